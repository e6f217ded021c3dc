#!/usr/bin/env bash
# make demo: the whole story on one machine. Starts a Nomad dev agent, the
# GitHub simulator (ghsim) and the manager, then plays a triager who labels a
# PR, and shows what happens. Leaves everything running until Ctrl-C, then
# cleans up.
#
# Stage reached so far (the rest lands with the fleet issue): Nomad dev agent
# and manager start and report ready; the ghsim-driven part runs when ghsim
# is built.
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
  meta { buildfleet_tiers = "quick,refleak" }
  node_max_allocs = 4
}
plugin "raw_exec" { config { enabled = true } }
HCL
say "starting Nomad dev agent on 127.0.0.1:$nport"
env -u AWS_CA_BUNDLE "$nomad" agent -dev -config "$work/nomad.hcl" -data-dir "$work/nomad" >"$work/nomad.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$nport/v1/nodes" "Nomad"

ghsim_url=""
if [ -x bin/ghsim ]; then
  gport=$(free_port)
  say "starting ghsim (GitHub simulator) on 127.0.0.1:$gport"
  bin/ghsim serve --listen "127.0.0.1:$gport" >"$work/ghsim.log" 2>&1 &
  pids+=($!)
  ghsim_url="http://127.0.0.1:$gport"
  wait_http "$ghsim_url/rate_limit" "ghsim" || true
fi

cat > "$work/buildfleet.yaml" <<YAML
listen: 127.0.0.1:$mport
public_url: http://127.0.0.1:$mport
store: {path: $work/buildfleet.db}
github:
  api_url: ${ghsim_url:-http://127.0.0.1:1}/
  token: demo-token
  webhook_secret: demo-webhook-secret
repositories:
  - name: demo/cpython
    workflow: buildbots.yml
pools:
  - {name: linux-x86_64-quick, platform: linux-x86_64, tier: quick, labels: [self-hosted, buildfleet, linux, x86_64, quick], stable: true, max_runners: 4}
  - {name: linux-x86_64-refleak, platform: linux-x86_64, tier: refleak, labels: [self-hosted, buildfleet, linux, x86_64, refleak], stable: true, max_runners: 2}
nomad: {address: "http://127.0.0.1:$nport"}
YAML
say "starting the manager on 127.0.0.1:$mport"
bin/buildfleet serve --config "$work/buildfleet.yaml" >"$work/manager.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$mport/healthz" "manager"
say "manager health:    $(curl -fsS "http://127.0.0.1:$mport/healthz")"
say "manager readiness: $(curl -sS "http://127.0.0.1:$mport/readyz")"
say "Nomad UI:          http://127.0.0.1:$nport/ui"
say "manager metrics:   http://127.0.0.1:$mport/metrics"
say "not yet part of the demo: labelling a PR, runners on Nomad, results on the PR (open issues 4-7)"
say "logs in $work; press Ctrl-C to stop and clean up"
wait "${pids[@]}"
