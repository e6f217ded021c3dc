#!/bin/sh
# run-runner.sh: start one ephemeral GitHub Actions runner on a raw_exec host
# (Linux, macOS; any host whose runner archive the manager names).
#
# The manager names the runner archive and its SHA-256 in the runner's
# dispatch meta, from GitHub's own list of current runner downloads: no
# version or checksum is written down here. This script takes the archive
# from the host's cache (one file per checksum) or downloads it, verifies
# the SHA-256 of its own private copy BEFORE extracting anything (so a
# tampered cache or download never runs), extracts it into a fresh work
# dir, runs it with the just-in-time (JIT) config read from a file,
# forwards SIGINT/SIGTERM to it, and removes the work dir when it exits.
# The JIT config is a secret: this script never prints it and passes it
# only in the runner's own environment.
#
# Environment:
#   RUNNER_URL        the archive (default: $NOMAD_META_runner_url)
#   RUNNER_SHA256     its SHA-256, 64 hex digits (default:
#                     $NOMAD_META_runner_sha256)
#   JIT_CONFIG_FILE   file holding the JIT config
#                     (default: $NOMAD_SECRETS_DIR/jit, else /secrets/jit)
#   RUNNER_CACHE_DIR  the host's archive cache (default:
#                     ${XDG_CACHE_HOME:-$HOME/.cache}/buildfleet-runner)
#   NOMAD_TASK_DIR    the work dir is created under it (else $TMPDIR or /tmp)
set -eu

log() { echo "run-runner: $*" >&2; }
die() {
	log "$*"
	exit 1
}

url="${RUNNER_URL:-${NOMAD_META_runner_url:-}}"
want="$(printf '%s' "${RUNNER_SHA256:-${NOMAD_META_runner_sha256:-}}" | tr 'A-F' 'a-f')"
jit_file="${JIT_CONFIG_FILE:-${NOMAD_SECRETS_DIR:-/secrets}/jit}"
cache_dir="${RUNNER_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/buildfleet-runner}"

[ -n "$url" ] || die "no runner archive named (RUNNER_URL, or the dispatch meta runner_url the manager sets from GitHub's runner downloads)"
case "$want" in
*[!0-9a-f]* | "") die "no SHA-256 for $url (RUNNER_SHA256 or meta runner_sha256); refusing to run an unverified runner" ;;
esac
[ ${#want} -eq 64 ] || die "the checksum for $url is not a SHA-256; refusing"

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

# verified FILE: FILE exists and has the wanted checksum.
verified() {
	[ -f "$1" ] && [ "$(sha256_of "$1" | tr 'A-F' 'a-f')" = "$want" ]
}

# cache_put FILE: keep a verified archive in the host's cache under its
# checksum, atomically (concurrent runners never see half a file). Best
# effort: a cache that cannot be written costs a download next time.
cache_put() {
	mkdir -p "$cache_dir" 2>/dev/null || return 0
	part="$cache_dir/$want.part.$$"
	if cp "$1" "$part" 2>/dev/null && chmod 0644 "$part" && mv -f "$part" "$cache_dir/$want" 2>/dev/null; then
		return 0
	fi
	rm -f "$part" 2>/dev/null || true
}

# fetch_archive DEST: DEST becomes a verified private copy of the archive,
# from the cache when it holds a good one, else downloaded (then cached).
# The copy is what is verified and extracted, so a cache file changed
# after the check cannot slip in.
fetch_archive() {
	if [ -f "$cache_dir/$want" ] && cp "$cache_dir/$want" "$1" 2>/dev/null && verified "$1"; then
		log "runner archive $want from the host's cache"
		return 0
	fi
	rm -f "$1"
	log "downloading $url"
	if ! curl -fsSL --retry 3 -o "$1" "$url"; then
		rm -f "$1"
		die "download of $url failed"
	fi
	if ! verified "$1"; then
		rm -f "$1"
		die "checksum mismatch for $url (want $want); refusing to run it"
	fi
	cache_put "$1"
}

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
mkdir "$work/runner"
fetch_archive "$work/archive"
tar -xzf "$work/archive" -C "$work/runner"
rm -f "$work/archive"
[ -x "$work/runner/run.sh" ] || die "$url has no run.sh"

log "starting runner ${NOMAD_META_runner_version:-} in $work"
# The config goes from the file to the runner's environment only, which
# the runner reads (ACTIONS_RUNNER_INPUT_<OPTION>, as actions-runner-controller
# starts it) and which, unlike an argument, other users' ps cannot show:
# isolate.sh runs every runner of the host as a uid of its own.
(cd "$work/runner" && ACTIONS_RUNNER_INPUT_JITCONFIG="$(cat "$jit_file")" exec ./run.sh) &
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
