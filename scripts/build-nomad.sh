#!/usr/bin/env bash
# Builds the pinned Nomad release from the Go module proxy into a cache folder
# outside the repository and reuses it on later runs. Prints the binary's path
# on stdout as its last line; progress goes to stderr.
#
# NOMAD_VERSION  the release to build (default 1.10.5)
# NOMAD_API_PSEUDO  the pseudo-version of the nested api module at the same
#                   commit; the release's module zip does not contain api/.
set -euo pipefail

version=${NOMAD_VERSION:-1.10.5}
api_pseudo=${NOMAD_API_PSEUDO:-v0.0.0-20250909143645-a3b86c697f38}
cache=${BUILDFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/buildfleet}
bin="$cache/nomad-$version/nomad"

log() { printf 'make nomad: %s\n' "$*" >&2; }

if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
  log "using cached $("$bin" version | head -n1) at $bin"
  echo "$bin"
  exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/nomad-build.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

log "downloading github.com/hashicorp/nomad@v$version source"
src=$(go mod download -json "github.com/hashicorp/nomad@v$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { log "module download failed"; exit 1; }

log "copying source to a writable folder"
cp -r "$src" "$work/nomad"
chmod -R u+w "$work/nomad"
cd "$work/nomad"

log "pinning the nested api module to $api_pseudo"
GOFLAGS=-mod=mod go mod edit -dropreplace=github.com/hashicorp/nomad/api 2>/dev/null || true
go mod edit -require="github.com/hashicorp/nomad/api@$api_pseudo"

log "compiling (about 8 minutes on 2 cores the first time)"
start=$(date +%s)
CGO_ENABLED=1 GOFLAGS=-mod=mod go build -trimpath -o "$work/nomad.bin" . 2>&1 \
  | awk '/go: downloading/ { n++; if (n % 50 == 0) printf "make nomad: %d modules downloaded\n", n > "/dev/stderr"; next } { print "make nomad: go: " $0 > "/dev/stderr" }'
[ -x "$work/nomad.bin" ] || { log "build failed"; exit 1; }
log "compiled in $(( $(date +%s) - start ))s"

mkdir -p "$(dirname "$bin")"
mv "$work/nomad.bin" "$bin.tmp"
mv "$bin.tmp" "$bin"
log "installed $("$bin" version | head -n1) at $bin"
echo "$bin"
