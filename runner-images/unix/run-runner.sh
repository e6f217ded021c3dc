#!/bin/sh
# run-runner.sh: start one ephemeral GitHub Actions runner on a raw_exec host
# (macOS, Linux without docker; FreeBSD is refused, see below).
#
# It fetches the runner release archive for this OS and CPU into a cache
# (once per version), refuses it unless its SHA-256 matches a pinned value,
# extracts it into a fresh work dir, runs it with the just-in-time (JIT)
# config read from a file, forwards SIGINT/SIGTERM to it, and removes the
# work dir when it exits. The JIT config is a secret: this script never
# prints it and never puts it in the environment.
#
# Environment:
#   JIT_CONFIG_FILE   file holding the JIT config
#                     (default: $NOMAD_SECRETS_DIR/jit, else /secrets/jit)
#   RUNNER_VERSION    runner release (default below); must be pinned
#   RUNNER_CACHE_DIR  where archives are kept (default:
#                     ${XDG_CACHE_HOME:-$HOME/.cache}/buildfleet-runner)
#   RUNNER_BASE_URL   release download root (default: GitHub releases)
#   RUNNER_CHECKSUMS_FILE  "<sha256>  <file>" lines used INSTEAD of the table
#                     below (tests, or a newer pin shipped by the operator)
#   NOMAD_TASK_DIR    the work dir is created under it (else $TMPDIR or /tmp)
set -eu

DEFAULT_RUNNER_VERSION=2.329.0

# Pinned SHA-256 of each release archive, from the runner's release notes.
# Keep in step with runner-images/checksums.txt.
pinned_sha256() {
	case "$1" in
	actions-runner-linux-x64-2.329.0.tar.gz) echo 194f1e1e4bd02f80b7e9633fc546084d8d4e19f3928a324d512ea53430102e1d ;;
	actions-runner-linux-arm64-2.329.0.tar.gz) echo 56768348b3d643a6a29d4ad71e9bdae0dc0ef1eb01afe0f7a8ee097b039bfaaf ;;
	actions-runner-osx-x64-2.329.0.tar.gz) echo c5a14e84b358c72ca83bf14518e004a8ad195cc440322fbca2a4fec7649035c7 ;;
	# osx-arm64 2.329.0: not pinned yet (see README); refused.
	*) echo "" ;;
	esac
}

log() { echo "run-runner: $*" >&2; }
die() {
	log "$*"
	exit 1
}

version="${RUNNER_VERSION:-$DEFAULT_RUNNER_VERSION}"
jit_file="${JIT_CONFIG_FILE:-${NOMAD_SECRETS_DIR:-/secrets}/jit}"
cache_dir="${RUNNER_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/buildfleet-runner}"
base_url="${RUNNER_BASE_URL:-https://github.com/actions/runner/releases/download}"

case "$(uname -s)" in
Linux) os=linux ;;
Darwin) os=osx ;;
FreeBSD)
	die "GitHub publishes no Actions runner for FreeBSD; this host needs a runner built from source (see runner-images/README.md), refusing"
	;;
*) die "unsupported OS $(uname -s)" ;;
esac
case "$(uname -m)" in
x86_64 | amd64) arch=x64 ;;
aarch64 | arm64) arch=arm64 ;;
*) die "unsupported CPU $(uname -m)" ;;
esac

file="actions-runner-${os}-${arch}-${version}.tar.gz"

if [ -n "${RUNNER_CHECKSUMS_FILE:-}" ]; then
	[ -r "$RUNNER_CHECKSUMS_FILE" ] || die "cannot read RUNNER_CHECKSUMS_FILE $RUNNER_CHECKSUMS_FILE"
	want=$(awk -v f="$file" '$2 == f { print $1; exit }' "$RUNNER_CHECKSUMS_FILE")
else
	want=$(pinned_sha256 "$file")
fi
case "$want" in
*[!0-9a-f]* | "") die "checksum not pinned for $file (runner $version); refusing to run an unverified runner" ;;
esac
[ ${#want} -eq 64 ] || die "pinned checksum for $file is not a SHA-256; refusing"

if [ ! -r "$jit_file" ] || [ ! -s "$jit_file" ]; then
	die "no JIT config at $jit_file (set JIT_CONFIG_FILE)"
fi

sha256_of() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d ' ' -f 1
	elif command -v shasum >/dev/null 2>&1; then
		shasum -a 256 "$1" | cut -d ' ' -f 1
	elif command -v sha256 >/dev/null 2>&1; then
		sha256 -q "$1"
	else
		die "no sha256sum, shasum or sha256 on PATH"
	fi
}

# verified FILE: FILE exists and has the pinned checksum.
verified() {
	[ -f "$1" ] && [ "$(sha256_of "$1" | tr 'A-F' 'a-f')" = "$want" ]
}

mkdir -p "$cache_dir"
archive="$cache_dir/$file"
if ! verified "$archive"; then
	rm -f "$archive"
	part="$archive.part.$$"
	log "downloading $file"
	if ! curl -fsSL --retry 3 -o "$part" "$base_url/v$version/$file"; then
		rm -f "$part"
		die "download of $file failed"
	fi
	if ! verified "$part"; then
		rm -f "$part"
		die "checksum mismatch for $file; refusing to run it"
	fi
	# Atomic: concurrent allocations on the host never see half a file.
	mv -f "$part" "$archive"
fi

work=""
child=""
# cleanup and forward run from traps.
# shellcheck disable=SC2317
cleanup() {
	if [ -n "$work" ]; then
		rm -rf "$work"
	fi
}
# Background jobs of a non-interactive shell ignore SIGINT, so both signals
# reach the runner as SIGTERM, which it treats as "stop gracefully".
# shellcheck disable=SC2317
forward() {
	if [ -n "$child" ]; then
		kill -TERM "$child" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap forward INT TERM

work=$(mktemp -d "${NOMAD_TASK_DIR:-${TMPDIR:-/tmp}}/actions-runner.XXXXXX")
tar -xzf "$archive" -C "$work"
[ -x "$work/run.sh" ] || die "$file has no run.sh"

log "starting runner $version in $work"
# The config goes from the file to the runner's environment only, which
# the runner reads (ACTIONS_RUNNER_INPUT_<OPTION>, as actions-runner-controller
# starts it) and which, unlike an argument, other users' ps cannot show:
# isolate.sh runs every runner of the host as a uid of its own.
(cd "$work" && ACTIONS_RUNNER_INPUT_JITCONFIG="$(cat "$jit_file")" exec ./run.sh) &
child=$!

status=0
wait "$child" || status=$?
# A forwarded signal interrupts wait; wait again for the runner to finish.
while kill -0 "$child" 2>/dev/null; do
	status=0
	wait "$child" || status=$?
done
log "runner exited with status $status"
exit "$status"
