#!/usr/bin/env bash
# make demo: the whole story on one machine. Starts a Nomad dev agent, the
# GitHub simulator (ghsim) and the manager, then plays a triager who labels a
# PR, and shows what happens. Leaves everything running until Ctrl-C, then
# cleans up.
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
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url what
  for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.2; done
  say "$2 did not come up; see $work/*.log"; exit 1
}

nport=$(free_port); rport=$(free_port); sport=$(free_port); mport=$(free_port)
cat > "$work/nomad.hcl" <<HCL
bind_addr = "127.0.0.1"
ports { http = $nport  rpc = $rport  serf = $sport }
client {
  options { "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean" }
  node_pool = "buildfleet-linux-x86_64"
  meta { buildfleet_tiers = "quick,refleak" }
  node_max_allocs = 4
}
plugin "raw_exec" { config { enabled = true } }
HCL
say "starting Nomad dev agent on 127.0.0.1:$nport"
env -u AWS_CA_BUNDLE "$nomad" agent -dev -config "$work/nomad.hcl" -data-dir "$work/nomad" >"$work/nomad.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$nport/v1/nodes" "Nomad"

gport=$(free_port)
ghsim_url="http://127.0.0.1:$gport"
say "starting ghsim, the GitHub simulator, on $ghsim_url (repository demo/cpython, workflows from workflows/)"
bin/ghsim serve --listen "127.0.0.1:$gport" --workflows workflows --repo demo/cpython \
  --collaborator triager=triage --collaborator visitor=read \
  --hook "http://127.0.0.1:$mport/webhook" --hook-secret demo-webhook-secret \
  --hook-events pull_request,workflow_job,workflow_run >"$work/ghsim.log" 2>&1 &
pids+=($!)
wait_http "$ghsim_url/_ghsim/faults" "ghsim"

cat > "$work/buildfleet.yaml" <<YAML
listen: 127.0.0.1:$mport
public_url: http://127.0.0.1:$mport
store: {path: $work/buildfleet.db}
github:
  api_url: $ghsim_url/
  token: demo-token
  webhook_secret: demo-webhook-secret
repositories:
  - name: demo/cpython
    workflow: quick-demo.yml
pools:
  - {name: linux-x86_64-quick, platform: linux-x86_64, tier: quick, labels: [self-hosted, buildfleet, linux, x86_64, quick, release], stable: true, max_runners: 4}
  - {name: linux-x86_64-debug, platform: linux-x86_64, tier: quick, labels: [self-hosted, buildfleet, linux, x86_64, quick, debug], stable: true, max_runners: 4}
  - {name: linux-x86_64-refleak, platform: linux-x86_64, tier: refleak, labels: [self-hosted, buildfleet, linux, x86_64, refleak], stable: true, max_runners: 2}
nomad: {address: "http://127.0.0.1:$nport"}
YAML
say "registering the pools' parameterized jobs on Nomad (stand-in runner: ghsim runner)"
bin/buildfleet --config "$work/buildfleet.yaml" nomad apply --ghsim "$PWD/bin/ghsim" | sed 's/^/      /'

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
say "runners the manager placed on Nomad (one ephemeral JIT runner per job):"
req=$(curl -fsS "http://127.0.0.1:$mport/api/v1/requests" | python3 -c '
import json, sys
d = json.load(sys.stdin)
reqs = d.get("requests", d) if isinstance(d, dict) else d
acc = [r for r in reqs if r.get("state") not in ("refused",)]
print(acc[0]["id"] if acc else "")')
if [ -n "$req" ]; then
  curl -fsS "http://127.0.0.1:$mport/api/v1/requests/$req" | python3 -c '
import json, sys
r = json.load(sys.stdin)
for x in r.get("runners", []):
    print("      %-32s pool %-22s nomad job %-58s %s %s" % (x["runner_name"], x["pool"], x.get("nomad_job_id", ""), x["state"], x.get("conclusion", "")))'
fi
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

say "status page: http://127.0.0.1:$mport/  (metrics: /metrics, readiness: /readyz)"
say "Nomad UI:    http://127.0.0.1:$nport/ui    ghsim: $ghsim_url/_ghsim/calls"
say "logs in $work; press Ctrl-C to stop and clean up"
wait "${pids[@]}"
