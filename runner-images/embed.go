package runnerimages

import _ "embed"

// Isolate is unix/isolate.sh: the first thing a raw_exec runner task runs
// on Linux, macOS and FreeBSD. The runner pool job delivers it (and
// RunRunner) into the task dir with a template, so a donor installs
// nothing but Nomad.
//
//go:embed unix/isolate.sh
var Isolate string

// RunRunner is unix/run-runner.sh: the bootstrap that fetches, verifies and
// runs the actions runner, started by Isolate as the runner's own user.
//
//go:embed unix/run-runner.sh
var RunRunner string

// RunRunnerPS1 is windows/run-runner.ps1, the Windows bootstrap.
//
//go:embed windows/run-runner.ps1
var RunRunnerPS1 string
