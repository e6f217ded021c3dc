#!/bin/sh
# run.sh: start github-act-runner with the interface of GitHub's runner
# archive, so the bootstrap runs either kind the same way. `make runners`
# packs it next to the binary into github-act-runner-<version>-<os>-<arch>.tar.gz.
#
#   run.sh --jitconfig CONFIG [ARG...]   as GitHub's ./run.sh
#   run.sh [ARG...]                      the JIT config already in
#                                        ACTIONS_RUNNER_INPUT_JITCONFIG (as
#                                        run-runner.sh hands it over), else
#                                        read from $JIT_CONFIG_FILE
#
# The config reaches the runner in ACTIONS_RUNNER_INPUT_JITCONFIG, which
# github-act-runner reads and removes from its environment before it runs
# any step; it is never printed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" = --jitconfig ]; then
	if [ $# -lt 2 ]; then
		echo "run.sh: --jitconfig needs a value" >&2
		exit 2
	fi
	ACTIONS_RUNNER_INPUT_JITCONFIG=$2
	shift 2
elif [ -n "${ACTIONS_RUNNER_INPUT_JITCONFIG:-}" ]; then
	:
elif [ -n "${JIT_CONFIG_FILE:-}" ] && [ -s "$JIT_CONFIG_FILE" ]; then
	ACTIONS_RUNNER_INPUT_JITCONFIG=$(cat "$JIT_CONFIG_FILE")
else
	echo "run.sh: no JIT config (--jitconfig CONFIG, or a file at \$JIT_CONFIG_FILE)" >&2
	exit 2
fi
export ACTIONS_RUNNER_INPUT_JITCONFIG
exec "$here/github-act-runner" run "$@"
