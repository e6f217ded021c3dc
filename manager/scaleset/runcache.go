package scaleset

import (
	"context"
	"sync"

	"github.com/buildfleet/buildfleet/manager/github"
)

// runCache keeps the job lists of runs, shared by the listeners: a run's
// jobs are listed once for all the messages, of all the pools, that name
// them, and again only when a name is missing (a job that its needs
// queued later). Only what does not change is read from it: ids, names,
// labels, links.
type runCache struct {
	gh   GitHub
	mu   sync.Mutex
	runs map[int64][]github.Job
}

// maxCachedRuns bounds the cache; past it, it starts again empty.
const maxCachedRuns = 1000

// job finds the run's job of that name. The lock is held across the
// call, so that listeners asking at once about one run make one call.
func (c *runCache) job(ctx context.Context, owner, repo string, runID int64, name string) (github.Job, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if j, found := named(c.runs[runID], name); found {
		return j, true, nil
	}
	jobs, err := c.gh.RunJobs(ctx, owner, repo, runID)
	if err != nil {
		return github.Job{}, false, err
	}
	if c.runs == nil || len(c.runs) >= maxCachedRuns {
		c.runs = map[int64][]github.Job{}
	}
	c.runs[runID] = jobs
	j, found := named(jobs, name)
	return j, found, nil
}

func named(jobs []github.Job, name string) (github.Job, bool) {
	for _, j := range jobs {
		if j.Name == name {
			return j, true
		}
	}
	return github.Job{}, false
}
