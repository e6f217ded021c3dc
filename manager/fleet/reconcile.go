package fleet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/store"
	"github.com/buildfleet/buildfleet/manager/trigger"
)

// JobLister is what reconciliation needs from GitHub: the jobs of a run, and
// the run itself once its jobs are all completed (its workflow_run webhook
// may be lost too).
type JobLister interface {
	RunJobs(ctx context.Context, owner, repo string, runID int64) ([]github.Job, error)
	GetRun(ctx context.Context, owner, repo string, id int64) (github.Run, error)
}

var _ JobLister = (*github.Client)(nil)

// Reconciliation compares the jobs of every run in flight with GitHub's
// list of them, so that a dropped, duplicated or reordered workflow_job
// webhook never leaves a job without a runner or a result:
//
//	GitHub says   our latest attempt           action
//	queued        none / failed                start a runner (as the queued event would)
//	queued        dispatched, runner running   longer than TakeWithin: replace it
//	              for TakeWithin
//	queued        dispatched, child exited     replace it (see notWaiting)
//	              or gone from Nomad
//	in_progress   starting / dispatched        record running, report pending
//	in_progress   running, child gone          lost: the fleet's error
//	completed     not completed                record and report the conclusion
//	all completed, run completed               the request is done
//
// It costs one GitHub call per run checked. A run dispatched before the
// fleet started is checked at start (what a restart may have missed), and
// every run after the store could not be read (webhooks may have been
// refused meanwhile); any other run ReconcileEvery after its dispatch or
// the last webhook of it, with the wait doubling while nothing changes (up to 16×):
// while webhooks flow nothing is polled, and a refleak build that runs
// for hours costs a few calls an hour.
type reconciler struct {
	mu   sync.Mutex
	runs map[int64]*runCheck
	// startedAt is when the fleet started: a run dispatched before it may
	// have lost webhooks while no manager ran.
	startedAt time.Time
	// outage is set when the store could not be read: the next pass checks
	// every run in flight.
	outage bool
}

type runCheck struct {
	next  time.Time
	quiet int // checks in a row that found nothing to do
}

// maxQuiet caps the doubling of the wait between checks of a quiet run.
const maxQuiet = 4

// ReconcileAll makes the next reconciliation check every run in flight at
// once. Call it when the store writes again after an outage: the
// workflow_job webhooks answered with a 5xx meanwhile are not sent again,
// and a quiet run's next check could be many minutes away.
func (f *Fleet) ReconcileAll() {
	f.rec.mu.Lock()
	f.rec.outage = true
	f.rec.mu.Unlock()
	f.Wake()
}

// touch records a webhook of the run: it is alive, check it later.
func (f *Fleet) touch(runID int64) {
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	c := f.rec.runs[runID]
	if c == nil {
		c = &runCheck{}
		f.rec.runs[runID] = c
	}
	c.next, c.quiet = f.now().Add(f.reconcileEvery), 0
}

// checkSoon makes the run due at (or before) at.
func (f *Fleet) checkSoon(runID int64, at time.Time) {
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	c := f.rec.runs[runID]
	if c == nil {
		c = &runCheck{next: at}
		f.rec.runs[runID] = c
	}
	if at.Before(c.next) {
		c.next = at
	}
}

// due tells whether a run should be checked now. A run never seen is due
// when its request was dispatched before the fleet started (a restart) or
// all is set (after a store outage); otherwise it is first checked
// ReconcileEvery after its dispatch, as if that were its last webhook, so
// a run whose webhooks flow is never polled.
func (f *Fleet) due(req store.Request, all bool) bool {
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	c := f.rec.runs[req.RunID]
	if c == nil {
		if all || req.UpdatedAt.Before(f.rec.startedAt) {
			return true
		}
		c = &runCheck{next: req.UpdatedAt.Add(f.reconcileEvery)}
		f.rec.runs[req.RunID] = c
	}
	return all || !f.now().Before(c.next)
}

// checked schedules the run's next check: sooner when this one acted.
func (f *Fleet) checked(runID int64, acted bool) {
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	c := f.rec.runs[runID]
	if c == nil {
		c = &runCheck{}
		f.rec.runs[runID] = c
	}
	if acted {
		c.quiet = 0
	} else if c.quiet < maxQuiet {
		c.quiet++
	}
	c.next = f.now().Add(f.reconcileEvery << c.quiet)
}

// reconcile checks the runs in flight that are due.
func (f *Fleet) reconcile(ctx context.Context) {
	if f.jobs == nil {
		return
	}
	open, err := f.st.OpenRequests(ctx)
	f.rec.mu.Lock()
	all := f.rec.outage
	f.rec.outage = err != nil
	f.rec.mu.Unlock()
	if err != nil {
		f.log.Warn("listing requests to reconcile", "err", err)
		return
	}
	live := &liveSet{nm: f.nm}
	inFlight := map[int64]bool{}
	for _, req := range open {
		// Accepted with a run: its scheduled comment waits for GitHub's
		// write budget while the run goes on; its jobs are ours already.
		if req.RunID == 0 || req.State != trigger.StateDispatched && req.State != trigger.StateAccepted {
			continue
		}
		inFlight[req.RunID] = true
		if ctx.Err() != nil || !f.due(req, all) {
			continue
		}
		acted, err := f.reconcileRun(ctx, req, live)
		if err != nil {
			f.log.Warn("reconciling a run with GitHub", "request", req.ID, "run", req.RunID, "err", err)
		}
		f.checked(req.RunID, acted || err != nil)
	}
	f.rec.mu.Lock()
	for id := range f.rec.runs {
		if !inFlight[id] {
			delete(f.rec.runs, id)
		}
	}
	f.rec.mu.Unlock()
}

// reconcileRun brings the run's attempts in line with GitHub's jobs. It
// reports whether it changed anything.
func (f *Fleet) reconcileRun(ctx context.Context, req store.Request, live *liveSet) (bool, error) {
	// A job not applied (the store refused a write, say) keeps the run in
	// flight: once its request ends, nothing looks at the job again.
	failed := 0
	acted, done, err := f.applyJobs(ctx, req, live, func(error) { failed++ })
	if err != nil || !done || failed > 0 || req.State != trigger.StateDispatched {
		// (Not dispatched yet: the trigger ends the request once its
		// comment went, and this check finds the run completed then.)
		return acted, err
	}
	owner, repo := splitRepo(req.Repo)
	run, err := f.jobs.GetRun(ctx, owner, repo, req.RunID)
	if err != nil || run.Status != "completed" {
		return acted, err
	}
	f.log.Info("run completed (found by reconciliation)", "request", req.ID, "run", req.RunID)
	return true, f.runCompleted(ctx, req.RunID)
}

// applyJobs lists the run's jobs and applies each (reconcileJob). It
// reports whether it changed anything and whether every job is completed;
// failed, when set, is told of each job that could not be applied.
func (f *Fleet) applyJobs(ctx context.Context, req store.Request, live *liveSet, failed func(error)) (acted, done bool, err error) {
	owner, repo := splitRepo(req.Repo)
	jobs, err := f.jobs.RunJobs(ctx, owner, repo, req.RunID)
	if err != nil {
		return false, false, err
	}
	done = len(jobs) > 0
	for _, j := range jobs {
		if j.Status != "completed" {
			done = false
		}
		a, err := f.reconcileJob(ctx, req, j, live)
		// An action that failed (the store refused a write, Nomad is down)
		// is no change: the run's checks back off as for a quiet run
		// instead of listing its jobs every ReconcileEvery while nothing
		// can be done (ReconcileAll brings them back after a store outage).
		a = a && err == nil
		if err != nil {
			if !errors.Is(err, errPending) {
				f.log.Warn("reconciling a job", "request", req.ID, "job", j.ID, "err", err)
			}
			if failed != nil {
				failed(err)
			}
		}
		acted = acted || a
	}
	return acted, done, nil
}

// reconcileJob applies GitHub's view of one job (see reconciler).
func (f *Fleet) reconcileJob(ctx context.Context, req store.Request, j github.Job, live *liveSet) (bool, error) {
	if p, _ := f.builderPool(req, j.Labels); p == nil {
		return false, nil // not a job for our runners
	}
	if f.starts.busy("", j.ID, 0) {
		return false, nil // its runner is being started; the next look sees it
	}
	e := jobEvent{receivedAt: f.now()}
	e.WorkflowJob.ID, e.WorkflowJob.RunID, e.WorkflowJob.Name = j.ID, j.RunID, j.Name
	e.WorkflowJob.Labels, e.WorkflowJob.HTMLURL = j.Labels, j.HTMLURL
	e.Repository.FullName = req.Repo
	last, err := f.st.LatestRunner(ctx, j.ID)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	switch j.Status {
	case "queued":
		switch {
		case !found:
			e.Action = "queued"
			f.log.Info("a queued job we had not heard of: starting its runner", "request", req.ID, "job", j.ID)
			return true, f.queued(ctx, req, e)
		case last.State == StateDispatched && last.NomadState == string(nomad.StateRunning) &&
			f.now().Sub(last.UpdatedAt) > f.takeWithin:
			why := fmt.Sprintf("its runner did not take the job within %s", f.takeWithin)
			return true, f.replace(ctx, last, why)
		case last.State == StateDispatched:
			if why := f.notWaiting(ctx, last, live); why != "" {
				return true, f.replace(ctx, last, why)
			}
		}
	case "in_progress":
		if !found {
			return false, nil // not started by us: nothing of ours runs it
		}
		switch last.State {
		case StateStarting, StateDispatched:
			e.Action = "in_progress"
			if j.RunnerName != "" {
				e.WorkflowJob.RunnerName = &j.RunnerName
			}
			return true, f.inProgress(ctx, req, e)
		case StateRunning:
			if why := f.gone(ctx, last, live); why != "" {
				return true, f.lost(ctx, req, last, why)
			}
		}
	case "completed":
		if found && (last.State == StateCompleted || last.State == StateLost && j.Conclusion != "success") {
			return false, nil
		}
		e.Action = "completed"
		c := j.Conclusion
		e.WorkflowJob.Conclusion = &c
		return true, f.completed(ctx, req, e)
	}
	return false, nil
}

// gone says why a running attempt's runner is no more, or "" while it may
// still run: Nomad reported its child failed, lost or stopped, or its
// child is no longer among the live ones, or it completed (exit 0) more
// than lostGrace ago while GitHub still says the job runs.
func (f *Fleet) gone(ctx context.Context, r store.Runner, live *liveSet) string {
	if r.TakenBy != "" || r.NomadJobID == "" {
		return "" // another runner runs the job; not ours to judge
	}
	switch nomad.State(r.NomadState) {
	case nomad.StateFailed, nomad.StateLost, nomad.StateStopped:
		if r.NomadReason != "" {
			return r.NomadReason
		}
		return "its allocation " + r.NomadState
	case nomad.StateComplete:
		if f.now().Sub(r.UpdatedAt) > lostGrace {
			return "the runner exited without finishing the job"
		}
		return ""
	}
	if f.now().Sub(r.UpdatedAt) < lostGrace {
		return "" // just started: Nomad's list may lag
	}
	ok, err := live.has(ctx, r.NomadJobID)
	if err != nil || ok {
		return ""
	}
	return "its Nomad job is gone (Nomad lost it)"
}

// StateLost (store.Runner.State): the runner took the job and then ended
// without finishing it (killed, exit 137, host lost, Nomad lost the
// child). The job is reported as the fleet's error, never the PR's
// failure, and the attempt takes no slot. See lost.
const StateLost = "lost"

// freed is called when an attempt leaves the active states: the loop
// looks at the jobs max_runners held back at once, not on its next tick.
func (f *Fleet) freed() {
	f.slotFreed.Store(true)
	f.Wake()
}

// isHeld tells whether max_runners holds the job back (see heldBack).
func (f *Fleet) isHeld(jobID int64) bool {
	f.heldMu.Lock()
	defer f.heldMu.Unlock()
	_, ok := f.held[jobID]
	return ok
}

// lostGrace is how long a runner that exited cleanly has for its job's
// completion to reach GitHub before the job counts as lost.
const lostGrace = time.Minute

// lost ends an attempt whose runner ended without finishing its job: its
// result is the fleet's error (never the PR's failure), its child,
// variable and registration go, and its slot frees. The job's completed
// webhook, when GitHub gives up on the runner, changes nothing but the
// recorded conclusion (see completed).
func (f *Fleet) lost(ctx context.Context, req store.Request, r store.Runner, why string) error {
	f.log.Warn("runner ended without finishing its job", "request", req.ID, "job", r.GitHubJobID,
		"runner", r.RunnerName, "reason", why)
	state := StateLost
	if err := f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{State: &state, NomadReason: &why}); err != nil {
		return fmt.Errorf("%w: %w", errPending, err)
	}
	f.release(ctx, r)
	f.freed()
	r.State, r.NomadReason = state, why
	return f.report(ctx, req, r, "error", "the runner was lost: "+why)
}

// liveSet lists Nomad's live runner children once per reconcile tick, and
// only if a check needs it.
type liveSet struct {
	nm   Nomad
	ids  map[string]bool
	err  error
	done bool
}

func (l *liveSet) has(ctx context.Context, id string) (bool, error) {
	if !l.done {
		l.done = true
		rs, err := l.nm.LiveRunners(ctx)
		l.err = err
		l.ids = map[string]bool{}
		for _, r := range rs {
			l.ids[r.DispatchedJobID] = true
		}
	}
	return l.ids[id], l.err
}
