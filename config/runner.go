package config

import (
	"fmt"
	"regexp"
	"time"
)

// RunnerLatest is runner.version's default: whatever GitHub publishes.
const RunnerLatest = "latest"

// Runner chooses the GitHub Actions runner release the fleet's runners
// download. GitHub refuses runners that lag a new release by more than 30
// days, so the default follows GitHub's list of current downloads and no
// version is written down anywhere.
type Runner struct {
	// Version is "latest" (GitHub's current release, asked about hourly)
	// or a release such as "2.330.0", whose checksums Packages must give.
	Version string `mapstructure:"version" yaml:"version"`
	// Freeze keeps the release in use (remembered in the store) instead of
	// moving to a new one: for when a release breaks builds. The manager
	// warns as the frozen release ages.
	Freeze bool `mapstructure:"freeze" yaml:"freeze"`
	// Packages are the archives of a pinned Version, one per platform.
	Packages []RunnerPackage `mapstructure:"packages" yaml:"packages"`
	// WarnAfter is how long a newer release may exist before the manager
	// warns (metric, status page, log) that the runners lag; GitHub refuses
	// them 30 days after (default 14 days).
	WarnAfter Duration `mapstructure:"warn_after" yaml:"warn_after"`
}

// RunnerPackage is a pinned runner archive for one platform.
type RunnerPackage struct {
	// Platform is a pool platform (linux-x86_64, macos-arm64, …).
	Platform string `mapstructure:"platform" yaml:"platform"`
	// SHA256 is the archive's checksum, 64 hex digits.
	SHA256 string `mapstructure:"sha256" yaml:"sha256"`
	// URL is where the archive is; default: GitHub's release page of the
	// version.
	URL string `mapstructure:"url" yaml:"url"`
}

// DefaultRunnerWarnAfter is runner.warn_after's default: half of GitHub's
// 30 days.
const DefaultRunnerWarnAfter = 14 * 24 * time.Hour

var (
	runnerVersionRE = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
	sha256RE        = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
)

func (r Runner) validate(bad func(key, format string, args ...any)) {
	switch {
	case r.Version == RunnerLatest:
		if len(r.Packages) > 0 {
			bad("runner.packages", "only a pinned runner.version takes packages; with %q they come from GitHub", RunnerLatest)
		}
	case runnerVersionRE.MatchString(r.Version):
		if len(r.Packages) == 0 {
			bad("runner.packages", "a pinned runner.version %s needs the SHA-256 of each platform's archive", r.Version)
		}
	default:
		bad("runner.version", "must be %q or a release like 2.330.0, got %q", RunnerLatest, r.Version)
	}
	seen := map[string]bool{}
	for i, p := range r.Packages {
		k := fmt.Sprintf("runner.packages[%d]", i)
		if _, err := ParsePlatform(p.Platform); err != nil {
			bad(k+".platform", "%v", err)
		} else if seen[p.Platform] {
			bad(k+".platform", "%q is listed twice", p.Platform)
		}
		seen[p.Platform] = true
		if !sha256RE.MatchString(p.SHA256) {
			bad(k+".sha256", "must be 64 hex digits, got %q", p.SHA256)
		}
		if p.URL != "" {
			checkURL(bad, k+".url", p.URL)
		}
	}
	if r.WarnAfter < 0 {
		bad("runner.warn_after", "must not be negative, got %s", r.WarnAfter)
	}
}
