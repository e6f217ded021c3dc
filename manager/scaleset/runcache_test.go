package scaleset

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/buildfleet/buildfleet/manager/github"
)

// countingJobs is a hand-written GitHub: a run's jobs, and how often they
// were listed.
type countingJobs struct {
	calls atomic.Int32
	jobs  []github.Job
}

func (c *countingJobs) RunJobs(context.Context, string, string, int64) ([]github.Job, error) {
	c.calls.Add(1)
	return c.jobs, nil
}

func TestRunCacheListsARunOnce(t *testing.T) {
	gh := &countingJobs{jobs: []github.Job{{ID: 1, Name: "linux-debug-quick"}, {ID: 2, Name: "linux-asan-quick"}}}
	c := &runCache{gh: gh}
	var wg sync.WaitGroup
	for _, name := range []string{"linux-debug-quick", "linux-asan-quick", "linux-debug-quick"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, ok, err := c.job(context.Background(), "python", "cpython", 7, name); !ok || err != nil {
				t.Errorf("job %s: %v, %v", name, ok, err)
			}
		}()
	}
	wg.Wait()
	if n := gh.calls.Load(); n != 1 {
		t.Errorf("%d listings for three messages of one run, want 1", n)
	}
	// A job queued later (its needs done) is not in the list: listed again.
	gh.jobs = append(gh.jobs, github.Job{ID: 3, Name: "report"})
	if j, ok, err := c.job(context.Background(), "python", "cpython", 7, "report"); !ok || err != nil || j.ID != 3 {
		t.Fatalf("later job: %+v, %v, %v", j, ok, err)
	}
	if n := gh.calls.Load(); n != 2 {
		t.Errorf("%d listings, want 2", n)
	}
}
