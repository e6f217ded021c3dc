// Package testenv finds the outside services and fixtures that tests need:
// the Nomad binary, npm fixture packages, Chromium. `make test` provides them
// and sets BUILDFLEET_TEST_STRICT=1, which turns a missing one into a test
// failure; a plain `go test` skips those tests with a hint instead.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// NomadVersion is the pinned Nomad release the tests run against.
const NomadVersion = "1.10.5"

// Strict reports whether missing services fail tests (under make test).
func Strict() bool { return os.Getenv("BUILDFLEET_TEST_STRICT") == "1" }

// CacheDir is where make keeps what it builds or installs outside the repo:
// $BUILDFLEET_CACHE, else $XDG_CACHE_HOME/buildfleet, else ~/.cache/buildfleet.
func CacheDir() string {
	if d := os.Getenv("BUILDFLEET_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "buildfleet")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "buildfleet")
}

// missing skips or fails the test, depending on Strict.
func missing(t testing.TB, what, hint string) {
	t.Helper()
	if Strict() {
		t.Fatalf("%s not found; %s", what, hint)
	}
	t.Skipf("%s not found; %s (make test provides it)", what, hint)
}

// NomadBinary returns the path of the pinned Nomad binary: $BUILDFLEET_NOMAD,
// else the one `make nomad` built into the cache.
func NomadBinary(t testing.TB) string {
	t.Helper()
	p := os.Getenv("BUILDFLEET_NOMAD")
	if p == "" {
		p = filepath.Join(CacheDir(), "nomad-"+NomadVersion, "nomad")
	}
	if _, err := os.Stat(p); err != nil {
		missing(t, "nomad binary "+p, "run make nomad")
	}
	return p
}

// NPMPackage returns the folder of an npm fixture package (e.g.
// "@octokit/openapi") installed by `make fixtures` into the cache.
func NPMPackage(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("BUILDFLEET_NPM_DIR")
	if dir == "" {
		dir = filepath.Join(CacheDir(), "npm")
	}
	p := filepath.Join(dir, "node_modules", filepath.FromSlash(name))
	if _, err := os.Stat(filepath.Join(p, "package.json")); err != nil {
		missing(t, "npm package "+name+" in "+dir, "run make fixtures")
	}
	return p
}

// Chromium returns the path of a headless-capable Chromium.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BUILDFLEET_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missing(t, "chromium", "run make browser (installs Debian's chromium)")
	return ""
}

// Shellcheck returns the path of shellcheck (installed by `make packages`).
func Shellcheck(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("shellcheck")
	if err != nil {
		missing(t, "shellcheck", "install it with `make packages`")
	}
	return p
}

// ActRunnerVersion is the github-act-runner release `make runners` builds.
const ActRunnerVersion = "v0.13.0"

// ActRunnerBinary returns the path of github-act-runner built for this
// machine: $BUILDFLEET_ACT_RUNNER, else the one `make runners` built into
// the cache (runners/github-act-runner-<version>/<os>-<arch>/).
func ActRunnerBinary(t testing.TB) string {
	t.Helper()
	p := os.Getenv("BUILDFLEET_ACT_RUNNER")
	if p == "" {
		p = filepath.Join(CacheDir(), "runners", "github-act-runner-"+ActRunnerVersion, runtime.GOOS+"-"+runtime.GOARCH, "github-act-runner")
	}
	if _, err := os.Stat(p); err != nil {
		missing(t, "github-act-runner binary "+p, "run make runners")
	}
	return p
}

// ActRunnerArchive returns the github-act-runner archive `make runners`
// packed for this machine (binary and run.sh, laid out like GitHub's
// runner archive), next to the binary ActRunnerBinary finds.
func ActRunnerArchive(t testing.TB) string {
	t.Helper()
	bin := ActRunnerBinary(t)
	p := filepath.Join(filepath.Dir(filepath.Dir(bin)), "github-act-runner-"+ActRunnerVersion+"-"+runtime.GOOS+"-"+runtime.GOARCH+".tar.gz")
	if _, err := os.Stat(p); err != nil {
		missing(t, "github-act-runner archive "+p, "run make runners")
	}
	return p
}
