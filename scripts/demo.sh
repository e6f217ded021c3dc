#!/usr/bin/env bash
# make demo: the whole story on one machine, in the shape of a real fleet.
# Starts a Nomad server and two donor client agents (each configured by
# `buildfleet donor config`, joined over mutual TLS with certificates from
# `nomad tls`), the GitHub simulator (ghsim) and the manager, then plays a
# triager who labels PRs, and shows which host ran which builder. Leaves
# everything running until Ctrl-C, then cleans up.
#
# What is not there yet is said so where it would appear (see the README).
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${BUILDFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/buildfleet}
nomad=${BUILDFLEET_NOMAD:-$cache/nomad-1.10.5/nomad}
work=$(mktemp -d "${TMPDIR:-/tmp}/buildfleet-demo.XXXXXX")
pids=()

say() { printf '\033[1mdemo:\033[0m %s\n' "$*"; }

cleanup() {
  say "stopping"
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -INT "${pids[i]}" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  # Nomad leaves tmpfs secrets mounts if it could not stop its tasks.
  grep -o " $work/[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  [ -n "${DEMO_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url what
  for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.2; done
  say "$2 did not come up; see $work/*.log"; exit 1
}

mport=$(free_port)
# Runners run as uids of their own (isolate.sh): what they run must be
# reachable by them, the rest of $work is not.
chmod 0711 "$work"
mkdir -m 0755 "$work/pub"
cp bin/ghsim "$work/pub/ghsim"

say "making the fleet's certificates with nomad tls (a CA; server, client and CLI certificates)"
mkdir "$work/tls"
(cd "$work/tls" && "$nomad" tls ca create && "$nomad" tls cert create -server -region global &&
  "$nomad" tls cert create -client && "$nomad" tls cert create -cli) >/dev/null 2>&1
tls="$work/tls"
nomadcurl() { curl -fsS --cacert "$tls/nomad-agent-ca.pem" --cert "$tls/global-cli-nomad.pem" --key "$tls/global-cli-nomad-key.pem" "$@"; }

nport=$(free_port); rport=$(free_port); sport=$(free_port)
nomad_url="https://127.0.0.1:$nport"
cat > "$work/server.hcl" <<HCL
name = "server"
data_dir = "$work/server"
bind_addr = "127.0.0.1"
advertise { http = "127.0.0.1"  rpc = "127.0.0.1"  serf = "127.0.0.1" }
ports { http = $nport  rpc = $rport  serf = $sport }
disable_update_check = true
server {
  enabled          = true
  bootstrap_expect = 1
}
tls {
  http = true
  rpc  = true
  ca_file   = "$tls/nomad-agent-ca.pem"
  cert_file = "$tls/global-server-nomad.pem"
  key_file  = "$tls/global-server-nomad-key.pem"
  verify_server_hostname = true
  verify_https_client    = true
}
HCL
say "starting the Nomad server on $nomad_url (mutual TLS on HTTP and RPC)"
env -u AWS_CA_BUNDLE "$nomad" agent -config "$work/server.hcl" >"$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
  [ -n "$(nomadcurl "$nomad_url/v1/status/leader" 2>/dev/null | tr -d '"')" ] && break; sleep 0.2
done

cat > "$work/buildfleet.yaml" <<YAML
listen: 127.0.0.1:$mport
public_url: http://127.0.0.1:$mport
store: {path: $work/buildfleet.db}
github:
  api_url: GHSIM_URL/
  token: demo-token
  webhook_secret: demo-webhook-secret
repositories:
  - name: demo/cpython
    workflow: quick-demo.yml
pools:
  - {name: linux-x86_64-quick, platform: linux-x86_64, tier: quick, labels: [self-hosted, buildfleet, linux, x86_64, quick, release], stable: true, max_runners: 4}
  - {name: linux-x86_64-debug, platform: linux-x86_64, tier: quick, labels: [self-hosted, buildfleet, linux, x86_64, quick, debug], stable: true, max_runners: 4}
  - {name: linux-x86_64-refleak, platform: linux-x86_64, tier: refleak, labels: [self-hosted, buildfleet, linux, x86_64, refleak], stable: true, max_runners: 2}
nomad:
  address: "$nomad_url"
  ca_file: "$tls/nomad-agent-ca.pem"
  client_cert_file: "$tls/global-cli-nomad.pem"
  client_key_file: "$tls/global-cli-nomad-key.pem"
YAML

# start_donor NAME TIERS: a donor's client agent from `buildfleet donor
# config`; on one machine, each also gets its own data dir, ports and the
# client certificate (a donor puts those files where the config says).
start_donor() {
  local name=$1 tiers=$2
  local cmd=(bin/buildfleet donor config --platform linux-x86_64 --tiers "$tiers" --slots 2
    --owner "Donor $name" --contact "$name@example.org" --servers "127.0.0.1:$rport" --name "$name")
  say "donor $name runs: ${cmd[*]}"
  "${cmd[@]}" >"$work/$name.hcl"
  local hp rp sp
  hp=$(free_port); rp=$(free_port); sp=$(free_port)
  cat >"$work/$name-local.hcl" <<HCL
data_dir = "$work/$name"
bind_addr = "127.0.0.1"
advertise { http = "127.0.0.1"  rpc = "127.0.0.1"  serf = "127.0.0.1" }
ports { http = $hp  rpc = $rp  serf = $sp }
tls {
  ca_file   = "$tls/nomad-agent-ca.pem"
  cert_file = "$tls/global-client-nomad.pem"
  key_file  = "$tls/global-client-nomad-key.pem"
}
HCL
  env -u AWS_CA_BUNDLE "$nomad" agent -config "$work/$name.hcl" -config "$work/$name-local.hcl" >"$work/$name.log" 2>&1 &
  pids+=($!)
}
start_donor donor-a quick
start_donor donor-b quick,refleak
for _ in $(seq 1 300); do
  ready=$(nomadcurl "$nomad_url/v1/nodes" 2>/dev/null | python3 -c '
import json, sys
print(sum(1 for n in json.load(sys.stdin) if n["Status"] == "ready" and n["Drivers"].get("raw_exec", {}).get("Healthy")))' 2>/dev/null || echo 0)
  [ "$ready" = 2 ] && break; sleep 0.2
done
say "donors joined: $(nomadcurl "$nomad_url/v1/nodes" | python3 -c '
import json, sys
print(", ".join("%s (%s, pool %s)" % (n["Name"], n["Status"], n["NodePool"]) for n in json.load(sys.stdin)))')"

gport=$(free_port)
ghsim_url="http://127.0.0.1:$gport"
say "starting ghsim, the GitHub simulator, on $ghsim_url (repository demo/cpython, workflows from workflows/)"
bin/ghsim serve --listen "127.0.0.1:$gport" --workflows workflows --repo demo/cpython \
  --collaborator triager=triage --collaborator visitor=read \
  --hook "http://127.0.0.1:$mport/webhook" --hook-secret demo-webhook-secret \
  --hook-events pull_request,workflow_job,workflow_run >"$work/ghsim.log" 2>&1 &
pids+=($!)
wait_http "$ghsim_url/_ghsim/faults" "ghsim"

sed -i "s|GHSIM_URL|$ghsim_url|" "$work/buildfleet.yaml"
# The runner is github-act-runner, a runner nobody here wrote, from the
# archive `make runners` built, verified against its SHA256SUMS as a host's
# bootstrap does, and unpacked where the runners' own uids can read it.
act_version=$(awk '$1 == "require" && $2 == "github.com/ChristopherHX/github-act-runner" { print $3 }' runner-images/act-runner/go.mod)
act_dir="$cache/runners/github-act-runner-$act_version"
act_file="github-act-runner-$act_version-$(go env GOOS)-$(go env GOARCH).tar.gz"
(cd "$act_dir" && grep "  $act_file\$" SHA256SUMS | sha256sum -c --quiet -) || { say "$act_dir/$act_file does not match its SHA256SUMS; run make runners"; exit 1; }
mkdir -m 0755 "$work/pub/act-runner"
tar -xzf "$act_dir/$act_file" -C "$work/pub/act-runner"
say "registering the pools' parameterized jobs on Nomad (runner: github-act-runner $act_version, started by isolate.sh as a uid of its own)"
bin/buildfleet --config "$work/buildfleet.yaml" nomad apply --runner-command "$work/pub/act-runner/run.sh" | sed 's/^/      /'

say "starting the manager on 127.0.0.1:$mport"
bin/buildfleet serve --config "$work/buildfleet.yaml" >"$work/manager.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$mport/healthz" "manager"
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$mport/readyz" 2>/dev/null && break; sleep 0.2; done
say "manager readiness: $(curl -sS "http://127.0.0.1:$mport/readyz")"

sha=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
say "a contributor opens PR #1 from a fork at $sha"
curl -fsS -XPOST "$ghsim_url/_ghsim/repos/demo/cpython/pulls" \
  -d "{\"title\":\"gh-1: demo\",\"author\":\"contributor\",\"fork\":\"contributor\",\"head_sha\":\"$sha\"}" >/dev/null
label='🔨 test-with-buildbots'
say "a visitor (role read) adds the label: refused"
curl -fsS -XPOST "$ghsim_url/_ghsim/repos/demo/cpython/pulls/1/labels" -d "{\"label\":\"$label\",\"user\":\"visitor\"}" >/dev/null
sleep 1
say "a triager adds the label: accepted"
curl -fsS -XPOST "$ghsim_url/_ghsim/repos/demo/cpython/pulls/1/labels" -d "{\"label\":\"$label\",\"user\":\"triager\"}" >/dev/null
sleep 3

say "comments on the PR:"
curl -fsS "$ghsim_url/_ghsim/repos/demo/cpython/comments" | python3 -c '
import json, sys
for c in json.load(sys.stdin):
    print("      --- by", c.get("user", {}).get("login", "?"))
    for line in c["body"].splitlines():
        if not line.startswith("<!--"):
            print("      " + line)'
say "workflow runs (inputs pinned to the labelled SHA) and their jobs:"
for _ in $(seq 1 30); do
  done_jobs=$(curl -fsS "$ghsim_url/_ghsim/repos/demo/cpython/runs" | python3 -c '
import json, sys
runs = json.load(sys.stdin)
print(sum(1 for r in runs for j in r.get("jobs", []) if j.get("status") == "completed"))')
  [ "$done_jobs" -gt 0 ] && break
  sleep 1
done
curl -fsS "$ghsim_url/_ghsim/repos/demo/cpython/runs" | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    print("      run %s %r: %s %s, sha input %s" % (r["id"], r.get("display_title"), r["status"], r.get("conclusion") or "", r.get("inputs", {}).get("sha")))
    for j in r.get("jobs", []):
        print("        job %-22s %-11s %-9s runner %s  %s" % (j["name"], j["status"], j.get("conclusion") or "", j.get("runner_name"), j.get("html_url")))'
sha2=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
say "PR #2 at $sha2 gets the refleak label: only donor-b lists refleak"
curl -fsS -XPOST "$ghsim_url/_ghsim/repos/demo/cpython/pulls" \
  -d "{\"title\":\"gh-2: demo\",\"author\":\"contributor\",\"fork\":\"contributor\",\"head_sha\":\"$sha2\"}" >/dev/null
curl -fsS -XPOST "$ghsim_url/_ghsim/repos/demo/cpython/pulls/2/labels" -d '{"label":"🔨 test-with-refleak-buildbots","user":"triager"}' >/dev/null
for _ in $(seq 1 60); do
  done_runs=$(curl -fsS "$ghsim_url/_ghsim/repos/demo/cpython/runs" | python3 -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin) if r["status"] == "completed"))')
  [ "$done_runs" -ge 2 ] && break
  sleep 1
done

say "which host ran which builder (the manager's runners, Nomad's allocations):"
nomadcurl "$nomad_url/v1/allocations" >"$work/allocs.json"
curl -fsS "http://127.0.0.1:$mport/api/v1/requests" >"$work/requests.json"
python3 - "$work" "$mport" <<'PY'
import json, sys, urllib.request
work, mport = sys.argv[1], sys.argv[2]
node_of = {a["JobID"]: a["NodeName"] for a in json.load(open(work + "/allocs.json"))}
d = json.load(open(work + "/requests.json"))
reqs = d.get("requests", d) if isinstance(d, dict) else d
for r in reqs:
    if r.get("state") == "refused":
        continue
    full = json.load(urllib.request.urlopen("http://127.0.0.1:%s/api/v1/requests/%s" % (mport, r["id"])))
    for x in full.get("runners", []):
        print("      PR #%-3s %-8s builder %-22s on %-8s runner %s %s" % (r.get("pr"), r.get("tier"), x["pool"],
              node_of.get(x.get("nomad_job_id", ""), "(not placed)"), x["runner_name"], x.get("conclusion", "")))
PY
say "results on the PR head $sha (latest per builder, as GitHub shows them):"
curl -fsS "$ghsim_url/_ghsim/repos/demo/cpython/commits/$sha" | python3 -c '
import json, sys
v = json.load(sys.stdin)
seen = set()
for s in v.get("statuses", []):
    if s["context"] in seen:
        continue
    seen.add(s["context"])
    print("      %-32s %-8s %-28s %s" % (s["context"], s["state"], s.get("description", ""), s.get("target_url", "")))
for c in v.get("check_runs", []):
    print("      %-32s %-8s %s" % (c["name"], c.get("conclusion") or c["status"], c.get("details_url", "")))
if not seen and not v.get("check_runs"):
    print("      (none yet)")'

job_url=$(curl -fsS "$ghsim_url/_ghsim/repos/demo/cpython/runs" | python3 -c '
import json, sys
jobs = [j for r in json.load(sys.stdin) for j in r.get("jobs", []) if j.get("status") == "completed"]
print(jobs[0]["html_url"] if jobs else "")')
if [ -n "$job_url" ]; then
  say "the log page of a job ($job_url), as github-act-runner uploaded it:"
  curl -fsS "$job_url?raw=1" | head -40 | sed 's/^/      /'
fi

say "status page: http://127.0.0.1:$mport/  (metrics: /metrics, readiness: /readyz)"
say "Nomad UI:    $nomad_url/ui (with the CLI certificate in $tls)    ghsim: $ghsim_url/_ghsim/calls"
say "logs in $work; press Ctrl-C to stop and clean up"
wait "${pids[@]}"
