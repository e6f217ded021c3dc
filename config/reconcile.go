package config

import (
	"fmt"
	"time"
)

// Reconcile configures how often the manager looks for what no webhook
// told it: GitHub does not redeliver a webhook the manager missed (it was
// down, restarting, or its store refused the delivery), so labels still
// on PRs and the jobs of runs in flight are compared with GitHub's state.
type Reconcile struct {
	// LabelScanEvery is how often open PRs still carrying a trigger label
	// are searched for (default 5m): one search call per repository and
	// label, and GitHub allows 30 searches a minute.
	LabelScanEvery Duration `mapstructure:"label_scan_every" yaml:"label_scan_every"`
	// LabelMinAge is how old a label must be before the scan builds it
	// (default 2m): a younger one is left to its webhook, which is likely
	// on its way.
	LabelMinAge Duration `mapstructure:"label_min_age" yaml:"label_min_age"`
	// JobsEvery is how long after the last webhook of a run in flight its
	// jobs are compared with GitHub's (default 1m; at once after a start).
	JobsEvery Duration `mapstructure:"jobs_every" yaml:"jobs_every"`
	// RetryEvery is how often unfinished work (a step GitHub or Nomad
	// refused for now, a request waiting for its run) is tried again
	// (default 5s).
	RetryEvery Duration `mapstructure:"retry_every" yaml:"retry_every"`
}

// Reconcile defaults.
const (
	DefaultLabelScanEvery = 5 * time.Minute
	DefaultLabelMinAge    = 2 * time.Minute
	DefaultJobsEvery      = time.Minute
	DefaultRetryEvery     = 5 * time.Second
)

// WriteLimit is one window of GitHub's limit on content-creating requests:
// at most Requests in any Per.
type WriteLimit struct {
	Requests int      `mapstructure:"requests" yaml:"requests"`
	Per      Duration `mapstructure:"per" yaml:"per"`
}

func (r *Reconcile) applyDefaults() {
	for _, d := range []struct {
		v   *Duration
		def time.Duration
	}{
		{&r.LabelScanEvery, DefaultLabelScanEvery}, {&r.LabelMinAge, DefaultLabelMinAge},
		{&r.JobsEvery, DefaultJobsEvery}, {&r.RetryEvery, DefaultRetryEvery},
	} {
		if *d.v == 0 {
			*d.v = Duration(d.def)
		}
	}
}

func (r Reconcile) validate(bad func(key, format string, args ...any)) {
	for _, d := range []struct {
		key string
		v   Duration
	}{
		{"reconcile.label_scan_every", r.LabelScanEvery}, {"reconcile.label_min_age", r.LabelMinAge},
		{"reconcile.jobs_every", r.JobsEvery}, {"reconcile.retry_every", r.RetryEvery},
	} {
		if d.v < 0 {
			bad(d.key, "must be positive, got %s", d.v)
		}
	}
}

func validateWriteLimits(bad func(key, format string, args ...any), limits []WriteLimit) {
	for i, l := range limits {
		k := fmt.Sprintf("github.write_limits[%d]", i)
		if l.Requests < 1 {
			bad(k+".requests", "must be at least 1, got %d", l.Requests)
		}
		if l.Per <= 0 {
			bad(k+".per", "must be positive, got %s", l.Per)
		}
	}
}
