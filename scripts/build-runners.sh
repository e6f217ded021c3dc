#!/usr/bin/env bash
# build-runners.sh: build github-act-runner, the runner for platforms GitHub
# ships no runner for, from the Go module proxy into the cache, once per
# version and platform:
#
#   $BUILDFLEET_CACHE/runners/github-act-runner-<version>/<os>-<arch>/github-act-runner
#   $BUILDFLEET_CACHE/runners/github-act-runner-<version>/github-act-runner-<version>-<os>-<arch>.tar.gz
#   $BUILDFLEET_CACHE/runners/github-act-runner-<version>/SHA256SUMS
#
# The archive holds the binary and run.sh (runner-images/act-runner), laid
# out like GitHub's runner archive, so hosts download, verify and start it
# exactly as they do GitHub's; SHA256SUMS is what the manager's
# act_runner.checksums points to. Archives are reproducible (sorted, owner
# 0, mtime 0, gzip -n), so the same sources give the same checksum.
#
# The version and every module hash are pinned by runner-images/act-runner
# (go.mod, go.sum). One dependency, github.com/actions-oss/act-cli, is not in
# the public checksum database; its hash in go.sum comes from
# github-act-runner's own go.sum, whose module hash the checksum database
# does verify. Verification stays on: GOFLAGS=-mod=readonly (go.sum is never
# extended), `go mod verify` checks the module cache against go.sum, and a
# GONOSUMDB/GOINSECURE/GOSUMDB=off in the caller's environment is refused.
#
# Environment: BUILDFLEET_CACHE (required), RUNNER_PLATFORMS (default: all
# five below).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
mod="$here/runner-images/act-runner"
: "${BUILDFLEET_CACHE:?BUILDFLEET_CACHE must be set}"
platforms=${RUNNER_PLATFORMS:-linux/amd64 freebsd/amd64 linux/riscv64 linux/s390x linux/ppc64le}

for v in GONOSUMDB GONOSUMCHECK GOINSECURE GOPRIVATE; do
	if [ -n "$(go env "$v")" ]; then
		echo "build-runners: $v is set; refusing to build without checksum verification" >&2
		exit 1
	fi
done
if [ "$(go env GOSUMDB)" = off ]; then
	echo "build-runners: GOSUMDB=off; refusing to build without checksum verification" >&2
	exit 1
fi
export GOFLAGS=-mod=readonly CGO_ENABLED=0

version=$(awk '$1 == "require" && $2 == "github.com/ChristopherHX/github-act-runner" { print $3 }' "$mod/go.mod")
[ -n "$version" ] || { echo "build-runners: no github-act-runner version in $mod/go.mod" >&2; exit 1; }
out="$BUILDFLEET_CACHE/runners/github-act-runner-$version"
# The stamp says what a binary was built from: a change of go.mod, go.sum
# or the Go toolchain rebuilds it.
stamp=$(cat "$mod/go.mod" "$mod/go.sum" <(go version) | sha256sum | cut -d ' ' -f 1)

verified=""
for plat in $platforms; do
	os=${plat%/*} arch=${plat#*/}
	dir="$out/$os-$arch"
	bin="$dir/github-act-runner"
	archive="$out/github-act-runner-$version-$os-$arch.tar.gz"
	if [ ! -x "$bin" ] || [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
		if [ -z "$verified" ]; then
			echo "build-runners: github-act-runner $version: downloading and verifying modules"
			(cd "$mod" && go mod download github.com/ChristopherHX/github-act-runner && go mod verify >/dev/null)
			verified=1
		fi
		echo "build-runners: building github-act-runner $version for $os/$arch"
		mkdir -p "$dir"
		rm -f "$dir/.stamp"
		(cd "$mod" && GOOS=$os GOARCH=$arch go build -trimpath \
			-ldflags "-s -w -X main.version=${version#v}" \
			-o "$bin.part.$$" github.com/ChristopherHX/github-act-runner)
		mv -f "$bin.part.$$" "$bin"
		(cd "$dir" && sha256sum github-act-runner >github-act-runner.sha256)
		echo "$stamp" >"$dir/.stamp"
	fi
	if [ ! -f "$archive" ] || [ "$bin" -nt "$archive" ] || ! cmp -s "$mod/run.sh" "$dir/run.sh"; then
		install -m 0755 "$mod/run.sh" "$dir/run.sh"
		tar -C "$dir" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - github-act-runner run.sh |
			gzip -n -9 >"$archive.part.$$"
		mv -f "$archive.part.$$" "$archive"
	fi
done
(cd "$out" && sha256sum github-act-runner-*.tar.gz >"SHA256SUMS.part.$$" && mv -f "SHA256SUMS.part.$$" SHA256SUMS)
echo "build-runners: github-act-runner $version in $out ($platforms)"
