package config

import "fmt"

// Runner kinds of a pool: which runner program takes its jobs.
const (
	// RunnerActions is GitHub's runner (actions/runner), the archive GitHub
	// lists for the platform.
	RunnerActions = "actions"
	// RunnerActRunner is github-act-runner, a Go runner that speaks
	// GitHub's runner protocol, for platforms GitHub ships no runner for.
	// `make runners` builds it; hosts download it from ActRunner.URL.
	RunnerActRunner = "act-runner"
)

// ActRunner says where hosts get github-act-runner archives and what their
// SHA-256 must be. `make runners` writes the archives
// (github-act-runner-<version>-<os>-<arch>.tar.gz) and their SHA256SUMS;
// the operator serves the folder at URL.
type ActRunner struct {
	// URL is the folder the archives are served from, ending in "/"; an
	// archive's URL is URL + its file name.
	URL string `mapstructure:"url" yaml:"url"`
	// Checksums is the SHA256SUMS file of those archives, read by the
	// manager at start; a runner is given the checksum of its archive and
	// refuses anything else.
	Checksums string `mapstructure:"checksums" yaml:"checksums"`
}

// DefaultRunner is the runner kind of a platform: github-act-runner where
// GitHub ships no runner (FreeBSD; Linux on riscv64, s390x, ppc64le),
// GitHub's runner elsewhere.
func DefaultRunner(p Platform) string {
	if !githubShipsRunner(p) {
		return RunnerActRunner
	}
	return RunnerActions
}

// githubShipsRunner reports whether GitHub publishes its runner for p
// (linux, macOS and Windows on x64 and arm64).
func githubShipsRunner(p Platform) bool {
	switch p.Kernel {
	case "linux", "darwin", "windows":
		return p.Arch == "amd64" || p.Arch == "arm64"
	}
	return false
}

// validateRunner checks a pool's runner kind against its platform.
func validateRunner(p Pool, k string, bad func(key, format string, args ...any)) {
	plat, err := ParsePlatform(p.Platform)
	if err != nil {
		return // reported for .platform
	}
	switch p.Runner {
	case RunnerActRunner:
		if plat.Kernel == "windows" {
			bad(k+".runner", "%q is not built for windows; use %q", RunnerActRunner, RunnerActions)
		}
	case RunnerActions:
		if !githubShipsRunner(plat) {
			bad(k+".runner", "GitHub ships no runner for %s; use %q", p.Platform, RunnerActRunner)
		}
	default:
		bad(k+".runner", "must be %q or %q, got %q", RunnerActions, RunnerActRunner, p.Runner)
	}
}

// validateActRunner checks act_runner when a pool runs github-act-runner.
func (c Config) validateActRunner(bad func(key, format string, args ...any)) {
	for _, p := range c.Pools {
		if p.Runner != RunnerActRunner {
			continue
		}
		checkURL(bad, "act_runner.url", c.ActRunner.URL)
		if c.ActRunner.URL != "" && c.ActRunner.URL[len(c.ActRunner.URL)-1] != '/' {
			bad("act_runner.url", "must end in / (the archives' folder), got %q", c.ActRunner.URL)
		}
		if c.ActRunner.Checksums == "" {
			bad("act_runner.checksums", "must name the SHA256SUMS file of `make runners` (pool %s runs %s)", p.Name, RunnerActRunner)
		}
		return
	}
}

// ActRunnerArchive is the file name of github-act-runner version for a
// platform, as `make runners` names it.
func ActRunnerArchive(version string, p Platform) string {
	return fmt.Sprintf("github-act-runner-%s-%s-%s.tar.gz", version, p.Kernel, p.Arch)
}
