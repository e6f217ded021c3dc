//go:build tools

// Package actrunner pins github-act-runner, the runner for platforms GitHub
// ships no runner for (FreeBSD; Linux on riscv64, s390x, ppc64le), with
// every module hash in go.sum. `make runners` builds it from here with
// `go build github.com/ChristopherHX/github-act-runner`; this file only
// keeps `go mod tidy` from dropping the requirement.
package actrunner

import _ "github.com/ChristopherHX/github-act-runner"
