package status

import "time"

// RunnerRelease is what the fleet's runners run against GitHub's latest
// runner release: the line that tells an operator, well before GitHub's
// 30-day limit, that a frozen or pinned fleet is falling behind.
type RunnerRelease struct {
	// Mode is latest, frozen or pinned.
	Mode string `json:"mode"`
	// InUse is the version GitHub's platforms' runners download.
	InUse string `json:"in_use"`
	// Latest is GitHub's current release ("" before GitHub was asked).
	Latest string `json:"latest"`
	// Behind is how long a newer release than InUse has existed.
	Behind time.Duration `json:"behind_ns"`
	// Warning is set once Behind passes the configured warning age.
	Warning string `json:"warning,omitempty"`
	// Error is the last failed refresh's.
	Error string `json:"error,omitempty"`
}

// RunnerReleases reports the runner release; nil shows none.
type RunnerReleases interface {
	RunnerRelease() RunnerRelease
}

// runnerOf is the runner a pool's hosts run: GitHub's release for
// GitHub's platforms, github-act-runner elsewhere.
func (s *server) runnerOf(kind string) string {
	if kind == "act-runner" {
		return "github-act-runner"
	}
	if s.release == nil {
		return "actions runner"
	}
	v := s.release.RunnerRelease().InUse
	if v == "" {
		return "actions runner (release not known yet)"
	}
	return "actions runner " + v
}

// releaseView is the front page's runner line; nil without a source.
func (s *server) releaseView() *RunnerRelease {
	if s.release == nil {
		return nil
	}
	r := s.release.RunnerRelease()
	return &r
}
