package scaleset

import (
	"context"
	"fmt"
	"strings"

	"github.com/buildfleet/buildfleet/manager/fleet"
	"github.com/buildfleet/buildfleet/manager/store"
)

// inFlight are the fleet's runner states whose job may have moved on
// while no session listened.
var inFlight = []string{fleet.StateStarting, fleet.StateDispatched, fleet.StateRunning}

// catchUp reads, when a session opens, what became of the jobs the pool's
// runners were started for: a job that started or ended while no session
// was open has no message in the new session's queue (whether GitHub
// keeps such messages is not documented; ghsim drops them), so its state
// comes from the REST API, one call per run, as the deliveries its
// messages would have made. A job still queued needs nothing: it is
// available or assigned, and a runner of the set takes it.
func (l *listener) catchUp(ctx context.Context) error {
	rows, err := l.o.Store.RunnersInState(ctx, inFlight...)
	if err != nil {
		return err
	}
	byRun := map[int64][]store.Runner{}
	for _, r := range rows {
		if r.Pool == l.pool.Name && strings.EqualFold(r.Repo, l.repo) {
			byRun[r.RunID] = append(byRun[r.RunID], r)
		}
	}
	owner, name, _ := strings.Cut(l.repo, "/")
	set := l.scaleSet()
	var ds []store.Delivery
	for runID, rs := range byRun {
		jobs, err := l.o.GitHub.RunJobs(ctx, owner, name, runID)
		if err != nil {
			return err
		}
		for _, r := range rs {
			for _, j := range jobs {
				if j.ID != r.GitHubJobID || j.Status == "queued" {
					continue
				}
				ref := jobRef{Job: j, Repo: l.repo}
				actions := []string{"in_progress"}
				if j.Status == "completed" {
					actions = append(actions, "completed")
				}
				for _, a := range actions {
					d, err := l.delivery(a, 0, ref, j.RunnerName, j.Conclusion)
					if err != nil {
						return err
					}
					d.ID = fmt.Sprintf("scaleset-%d-job%d-%s", set.Id, j.ID, a)
					ds = append(ds, d)
				}
			}
		}
	}
	if len(ds) > 0 {
		l.log.Info("jobs moved on while no session listened", "deliveries", len(ds))
	}
	return l.store(ctx, ds)
}
