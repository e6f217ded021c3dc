#!/bin/sh
# Entrypoint of the buildfleet Linux runner image: start the Actions runner
# with the just-in-time config read from a file, never from the environment
# or the command line of the container. The config is a secret: it is not
# printed, and the file is the only place it lives.
set -eu

jit_file="${JIT_CONFIG_FILE:-/secrets/jit}"
runner_home="${RUNNER_HOME:-/home/runner/actions-runner}"

if [ ! -r "$jit_file" ] || [ ! -s "$jit_file" ]; then
	echo "buildfleet-runner: no JIT config at $jit_file (mount it, or set JIT_CONFIG_FILE)" >&2
	exit 64
fi

cd "$runner_home"
# exec: the runner becomes PID 2 under tini and receives its signals.
exec ./run.sh --jitconfig "$(cat "$jit_file")"
