#!/bin/sh
# isolate.sh: run one runner of a raw_exec allocation as a user of its own.
#
# Nomad starts this script (delivered by the job's own template, nothing to
# install) as the agent's user. Run as root on Linux, it
#   - claims a numeric uid no other runner on this host holds (a lock per
#     uid, taken under flock), with the same number as its only group: no
#     passwd entry, no supplementary group, never 0;
#   - makes a fresh work dir owned by that uid, mode 0700, and copies the
#     JIT config into it (0400), so no other runner's uid can read either;
#   - runs the runner through setpriv with that uid, no groups, no new
#     privileges, and an environment that holds nothing but what a runner
#     needs (no Nomad token, no agent variables);
#   - when the runner ends (or on SIGINT/SIGTERM, forwarded as SIGTERM),
#     kills whatever that uid left running, removes the work dir and frees
#     the uid.
# Run as an unprivileged agent user, it cannot switch users: it runs the
# runner as that user, in a fresh work dir under the task dir, with the same
# clean environment; runners on such a host share one uid (isolation
# "none"). It refuses to run a runner as uid 0 or with group 0.
#
# Usage:
#   isolate.sh --bootstrap FILE [ARG...]   copy FILE into the work dir and
#                                          run it with /bin/sh
#   isolate.sh -- COMMAND [ARG...]         run COMMAND (tests, the demo)
# The runner finds its JIT config at $JIT_CONFIG_FILE.
#
# Environment (from the job):
#   NOMAD_SECRETS_DIR, NOMAD_TASK_DIR, NOMAD_ALLOC_ID   set by Nomad
#   BUILDFLEET_UID_BASE    first uid of the range (default 2130706432)
#   BUILDFLEET_UID_COUNT   size of the range (default 4096)
#   BUILDFLEET_WORK_ROOT   where root makes work dirs (default
#                          /var/lib/buildfleet/work)
#   BUILDFLEET_LOCK_DIR    uid locks (default /run/buildfleet/uids)
#   BUILDFLEET_RUNNER_CACHE  the host's runner archive cache, passed on as
#                          RUNNER_CACHE_DIR (default, as root:
#                          /var/cache/buildfleet/runner, mode 1777; else the
#                          agent user's ~/.cache/buildfleet-runner)
set -eu

log() { echo "isolate: $*" >&2; }
die() {
	log "$*"
	exit 70
}

uid_base="${BUILDFLEET_UID_BASE:-2130706432}"
uid_count="${BUILDFLEET_UID_COUNT:-4096}"
work_root="${BUILDFLEET_WORK_ROOT:-/var/lib/buildfleet/work}"
lock_dir="${BUILDFLEET_LOCK_DIR:-/run/buildfleet/uids}"
jit_src="${NOMAD_SECRETS_DIR:-/secrets}/jit"

bootstrap=""
case "${1:-}" in
--bootstrap)
	[ $# -ge 2 ] || die "--bootstrap needs a file"
	bootstrap="$2"
	shift 2
	[ -r "$bootstrap" ] || die "cannot read bootstrap $bootstrap"
	;;
--) shift ;;
*) die "usage: isolate.sh --bootstrap FILE [ARG...] | isolate.sh -- COMMAND [ARG...]" ;;
esac
[ -n "$bootstrap" ] || [ $# -ge 1 ] || die "no runner command"

case "$uid_base$uid_count" in
*[!0-9]*) die "BUILDFLEET_UID_BASE and BUILDFLEET_UID_COUNT must be numbers" ;;
esac
[ "$uid_base" -ge 1000 ] || die "BUILDFLEET_UID_BASE $uid_base is below 1000"

if [ ! -r "$jit_src" ] || [ ! -s "$jit_src" ]; then
	die "no JIT config at $jit_src"
fi

me=$(id -u)
uid=""
work=""
child=""

# claim_uid sets uid to a free uid of the range and locks it for this
# script's lifetime. A lock whose holder (this script's pid, recorded in it)
# is gone is stale: its uid's processes are killed and its work dir removed
# before reuse.
claim_uid() {
	mkdir -p "$lock_dir"
	chmod 0700 "$lock_dir"
	exec 9>"$lock_dir/.lock"
	flock 9
	i=0
	while [ "$i" -lt "$uid_count" ]; do
		u=$((uid_base + i))
		i=$((i + 1))
		if [ -e "$lock_dir/$u" ]; then
			holder=$(cat "$lock_dir/$u" 2>/dev/null || true)
			case "$holder" in
			"" | *[!0-9]*) ;;
			*) if kill -0 "$holder" 2>/dev/null; then continue; fi ;;
			esac
			reap "$u"
		fi
		echo "$$" >"$lock_dir/$u"
		uid=$u
		break
	done
	flock -u 9
	exec 9>&-
	[ -n "$uid" ] || die "all $uid_count runner uids from $uid_base are in use"
}

# reap kills every process of uid $1 and removes its work dir.
reap() {
	setpriv --reuid="$1" --regid="$1" --clear-groups kill -KILL -1 2>/dev/null || true
	rm -rf "${work_root:?}/$1"
}

# cleanup runs from the EXIT trap.
# shellcheck disable=SC2317
cleanup() {
	status=$?
	if [ -n "$uid" ]; then
		reap "$uid"
		rm -f "$lock_dir/$uid"
	elif [ -n "$work" ]; then
		rm -rf "$work"
	fi
	exit "$status"
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

if [ "$me" = 0 ]; then
	[ "$(uname -s)" = Linux ] || die "the Nomad agent runs as root on $(uname -s), where runners cannot get a user of their own; run the agent as a dedicated unprivileged user (docs/donors.md)"
	command -v setpriv >/dev/null 2>&1 || die "setpriv (util-linux) is missing: runners cannot drop root; install util-linux or run the agent as an unprivileged user"
	command -v flock >/dev/null 2>&1 || die "flock (util-linux) is missing"
	mkdir -p "$work_root"
	chmod 0711 "$(dirname "$work_root")" "$work_root"
	claim_uid
	work="$work_root/$uid"
	rm -rf "$work"
	mkdir -m 0700 "$work"
	mkdir -m 0700 "$work/tmp"
	chown -R "$uid:$uid" "$work"
	run_as="setpriv --reuid=$uid --regid=$uid --clear-groups --no-new-privs --"
else
	# The agent's own user: refuse what would make the runner root-like.
	for g in $(id -G); do
		[ "$g" != 0 ] || die "the agent's user has group 0 (root); run it as a user without it"
	done
	work=$(mktemp -d "${NOMAD_TASK_DIR:-${TMPDIR:-/tmp}}/runner.XXXXXX")
	chmod 0700 "$work"
	mkdir -m 0700 "$work/tmp"
	run_as=""
fi

# The runner's own copy of its JIT config, readable by its uid only.
(umask 077 && cat "$jit_src" >"$work/jit")
chmod 0400 "$work/jit"
if [ -n "$uid" ]; then
	chown "$uid:$uid" "$work/jit"
fi
if [ -n "$bootstrap" ]; then
	cp "$bootstrap" "$work/bootstrap.sh"
	chmod 0555 "$work/bootstrap.sh"
	set -- /bin/sh "$work/bootstrap.sh" "$@"
fi

# The host's runner archive cache, shared by the runners' uids (one
# verified file per checksum; run-runner.sh checks its own copy before use).
# Sticky like /tmp: no runner's uid can replace another's file.
cache="${BUILDFLEET_RUNNER_CACHE:-}"
if [ -z "$cache" ] && [ -n "$uid" ]; then
	cache=/var/cache/buildfleet/runner
elif [ -z "$cache" ]; then
	cache="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/buildfleet-runner"
fi
if [ -n "$uid" ]; then
	mkdir -p "$cache" && chmod 1777 "$cache"
fi

# The runner's environment: nothing inherited but the locale, the time zone
# and the allocation's identity (Nomad's meta holds no secret; the agent's
# variables, a Nomad token, the secrets dir path are left out).
for name in LANG LC_ALL TZ NOMAD_ALLOC_ID NOMAD_JOB_ID NOMAD_JOB_PARENT_ID NOMAD_DC NOMAD_REGION \
	$(env | sed -n 's/^\(NOMAD_META_[A-Za-z0-9_]*\)=.*/\1/p'); do
	eval "v=\${$name-}"
	if [ -n "$v" ]; then
		set -- "$name=$v" "$@"
	fi
done
set -- env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin \
	HOME="$work" TMPDIR="$work/tmp" USER=runner LOGNAME=runner \
	JIT_CONFIG_FILE="$work/jit" RUNNER_CACHE_DIR="$cache" "$@"

log "runner uid $(if [ -n "$uid" ]; then echo "$uid"; else echo "$me (the agent's)"; fi), work dir $work"
cd "$work"
# shellcheck disable=SC2086
$run_as "$@" &
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
