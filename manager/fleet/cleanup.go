package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/store"
	"github.com/buildfleet/buildfleet/manager/trigger"
)

// runEvent is the part of a workflow_run payload the fleet reads.
type runEvent struct {
	Action      string `json:"action"`
	WorkflowRun struct {
		ID         int64   `json:"id"`
		Conclusion *string `json:"conclusion"`
	} `json:"workflow_run"`
}

// HandleRun handles one workflow_run delivery: when a run of ours is
// cancelled, every runner of it that has not taken a job yet is stopped
// (purged), its JIT variable and its registration deleted. The jobs'
// completed events report the result.
func (f *Fleet) HandleRun(ctx context.Context, d store.Delivery) error {
	var e runEvent
	if err := json.Unmarshal(d.Payload, &e); err != nil {
		return fmt.Errorf("workflow_run payload: %w", err)
	}
	if e.Action != "completed" {
		return nil
	}
	if err := f.settle(ctx, e.WorkflowRun.ID); err != nil {
		return fmt.Errorf("%w: %w", errPending, err)
	}
	if err := f.runCompleted(ctx, e.WorkflowRun.ID); err != nil {
		return fmt.Errorf("%w: %w", errPending, err)
	}
	if e.WorkflowRun.Conclusion == nil || *e.WorkflowRun.Conclusion != "cancelled" {
		return nil
	}
	rs, err := f.st.RunnersOfRun(ctx, e.WorkflowRun.ID)
	if err != nil {
		return fmt.Errorf("%w: %w", errPending, err)
	}
	for _, r := range rs {
		if r.State != StateStarting && r.State != StateDispatched {
			continue
		}
		f.log.Info("run cancelled: stopping its pending runner", "run", r.RunID, "runner", r.RunnerName)
		f.release(ctx, r)
		state, concl := StateCompleted, "cancelled"
		if err := f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{State: &state, Conclusion: &concl}); err != nil {
			return fmt.Errorf("%w: %w", errPending, err)
		}
		f.freed()
	}
	return nil
}

// settle makes sure every builder of a completed run has its final
// result before the run's request ends: once it ends, reconciliation no
// longer looks at the run, so a job whose completed event was dropped (or
// is still on its way, reordered after the run's) would never be
// reported. When a builder's latest attempt is not final it lists the
// run's jobs once and applies them (see applyJobs); when all are final,
// as when webhooks flow in order, it costs no GitHub call.
func (f *Fleet) settle(ctx context.Context, runID int64) error {
	req, err := f.st.RequestByRun(ctx, runID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not ours
	}
	if err != nil || req.State != trigger.StateDispatched || f.jobs == nil {
		return err
	}
	rs, err := f.st.RunnersOfRun(ctx, runID)
	if err != nil {
		return err
	}
	var bs []trigger.Builder
	_ = json.Unmarshal([]byte(req.Builders), &bs)
	latest := map[string]store.Runner{}
	for _, r := range rs {
		if l, ok := latest[r.Pool]; !ok || r.Attempt >= l.Attempt {
			latest[r.Pool] = r
		}
	}
	for _, b := range bs {
		if r, ok := latest[b.Name]; ok && isFinal(r.State) {
			continue
		}
		f.log.Info("run completed before a builder's result: asking GitHub for its jobs", "request", req.ID, "run", runID, "builder", b.Name)
		failed := 0
		if _, _, err := f.applyJobs(ctx, req, &liveSet{nm: f.nm}, func(error) { failed++ }); err != nil {
			return err
		}
		if failed > 0 {
			return fmt.Errorf("%d job(s) of run %d not settled", failed, runID)
		}
		return nil
	}
	return nil
}

// isFinal tells whether an attempt's job has its final result (or will
// get none from this attempt's row again).
func isFinal(state string) bool {
	switch state {
	case StateCompleted, StateLost, StateGaveUp:
		return true
	}
	return false
}

// runCompleted tells the trigger that a run of ours completed: the
// request's lifecycle is the trigger's to change, not the fleet's.
func (f *Fleet) runCompleted(ctx context.Context, runID int64) error {
	return trigger.RunCompleted(ctx, f.st, runID)
}

// release removes everything of an attempt whose runner has not taken a
// job: the Nomad child (stopped and purged), the JIT variable and the
// GitHub registration. Each step is best effort; the orphan sweep catches
// what fails here.
func (f *Fleet) release(ctx context.Context, r store.Runner) {
	if r.NomadJobID != "" {
		if err := f.nm.StopRunner(ctx, r.NomadJobID); err != nil {
			f.log.Warn("stopping runner job", "nomad_job", r.NomadJobID, "err", err)
		}
	}
	if pool := f.pool(r.Pool); pool != nil && r.RunnerID != 0 {
		if err := f.nm.DeleteRunnerSecret(ctx, *pool, r.RunnerName); err != nil {
			f.log.Warn("deleting JIT variable", "runner", r.RunnerName, "err", err)
		}
	}
	if r.RunnerID != 0 {
		owner, repo := splitRepo(r.Repo)
		if err := f.gh.DeleteRunner(ctx, owner, repo, r.RunnerID); err != nil && !errors.Is(err, github.ErrNotFound) {
			f.log.Warn("deleting runner registration", "runner", r.RunnerName, "err", err)
		}
	}
}

// resumeRegistration frees an attempt's runner name that a restart left
// registered without a recorded JIT config, so that the same attempt can
// register again: no runner has that config (the secret is written only
// after the id is recorded).
func (f *Fleet) resumeRegistration(ctx context.Context, r store.Runner) error {
	gr, err := f.registration(ctx, r)
	if err != nil || gr == nil {
		return err
	}
	f.log.Info("removing the registration a restart left", "runner", r.RunnerName)
	owner, repo := splitRepo(r.Repo)
	if err := f.gh.DeleteRunner(ctx, owner, repo, gr.ID); err != nil && !errors.Is(err, github.ErrNotFound) {
		return err
	}
	return nil
}

// registration finds the GitHub registration of an attempt's runner by
// its name; nil when there is none.
func (f *Fleet) registration(ctx context.Context, r store.Runner) (*github.SelfHostedRunner, error) {
	owner, repo := splitRepo(r.Repo)
	rs, err := f.gh.ListRunners(ctx, owner, repo)
	if err != nil {
		return nil, err
	}
	for _, gr := range rs {
		if gr.Name == r.RunnerName {
			return &gr, nil
		}
	}
	return nil, nil
}

// isActive tells whether an attempt may still have a live runner.
func isActive(state string) bool {
	for _, s := range activeStates {
		if s == state {
			return true
		}
	}
	return false
}

// orphans removes what no active attempt accounts for: GitHub
// registrations named bf-… that are offline and not busy (a runner that
// died, or a registration a crash left), and Nomad children of our pools
// whose attempt is finished or unknown, unless GitHub says their runner
// is busy (another job's runner may have taken a job: see inProgress).
//
// It costs one GitHub call per repository, so it runs only when runners
// have changed since the last sweep (at start: when attempts are open),
// never as polling while nothing happens.
func (f *Fleet) orphans(ctx context.Context) {
	if !f.changed {
		return
	}
	f.changed = false
	busy := map[string]bool{}
	for _, rc := range f.cfg.Repositories {
		owner, repo := splitRepo(rc.Name)
		rs, err := f.gh.ListRunners(ctx, owner, repo)
		if err != nil {
			f.log.Warn("listing runners for the orphan sweep", "repo", rc.Name, "err", err)
			f.changed = true // try again next time
			return           // cannot tell busy runners: leave Nomad alone too
		}
		for _, gr := range rs {
			if !strings.HasPrefix(gr.Name, "bf-") {
				continue
			}
			if gr.Busy {
				busy[gr.Name] = true
				continue
			}
			if gr.Status != "offline" {
				continue
			}
			r, err := f.st.RunnerByName(ctx, gr.Name)
			if err == nil && isActive(r.State) {
				continue
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				continue
			}
			f.log.Info("deleting an orphan runner registration", "repo", rc.Name, "runner", gr.Name)
			if err := f.gh.DeleteRunner(ctx, owner, repo, gr.ID); err != nil && !errors.Is(err, github.ErrNotFound) {
				f.log.Warn("deleting runner registration", "runner", gr.Name, "err", err)
			}
		}
	}
	live, err := f.nm.LiveRunners(ctx)
	if err != nil {
		f.log.Warn("listing runner jobs for the orphan sweep", "err", err)
		f.changed = true
		return
	}
	for _, l := range live {
		if busy[l.RunnerName] || f.pool(l.Pool) == nil {
			continue // taken, or of a pool this manager does not serve
		}
		r, err := f.st.RunnerByName(ctx, l.RunnerName)
		if err == nil && isActive(r.State) {
			continue
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			continue
		}
		f.log.Info("stopping an orphan runner job", "nomad_job", l.DispatchedJobID, "runner", l.RunnerName)
		if err := f.nm.StopRunner(ctx, l.DispatchedJobID); err != nil {
			f.log.Warn("stopping runner job", "nomad_job", l.DispatchedJobID, "err", err)
		}
	}
}

// takenBy handles a job taken by a runner that is not its latest
// attempt's. GitHub gives a job to any idle runner with all its labels, so
// with several jobs on one label set, job A may run on the runner started
// for job B:
//
//   - the runner is an earlier attempt of the same job (its in_progress
//     came after we gave up on it): that attempt is the running one, and
//     the later attempt is released;
//   - the runner is B's: A's attempt records TakenBy (its own runner is
//     left alone: it may take B or another job; the orphan sweep stops it
//     once it is idle and unaccounted for), and B, whose runner is gone,
//     gets a new attempt with a new JIT config, as after a failure (it
//     counts towards B's attempts).
//
// It returns the attempt to mark running.
func (f *Fleet) takenBy(ctx context.Context, r store.Runner, name string) (store.Runner, error) {
	other, err := f.st.RunnerByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		f.log.Warn("job taken by a runner we did not start", "job", r.GitHubJobID, "runner", name)
		r.TakenBy = name
		return r, f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{TakenBy: &name})
	}
	if err != nil {
		return r, fmt.Errorf("%w: %w", errPending, err)
	}
	if other.GitHubJobID == r.GitHubJobID {
		if r.State == StateStarting || r.State == StateDispatched {
			f.release(ctx, r)
			state, why := StateReplaced, "an earlier attempt took the job"
			if err := f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{State: &state, NomadReason: &why}); err != nil {
				return r, fmt.Errorf("%w: %w", errPending, err)
			}
		}
		return other, nil
	}
	f.log.Warn("job taken by another job's runner", "job", r.GitHubJobID, "runner", name, "runner_of_job", other.GitHubJobID)
	r.TakenBy = name
	if err := f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{TakenBy: &name}); err != nil {
		return r, fmt.Errorf("%w: %w", errPending, err)
	}
	latest, err := f.st.LatestRunner(ctx, other.GitHubJobID)
	if err != nil || latest.Attempt != other.Attempt || other.State != StateDispatched {
		return r, nil
	}
	state, why := StateFailed, fmt.Sprintf("its runner %s took job %d", name, r.GitHubJobID)
	if err := f.st.UpdateRunner(ctx, other.GitHubJobID, other.Attempt, store.RunnerFields{State: &state, NomadReason: &why}); err != nil {
		return r, fmt.Errorf("%w: %w", errPending, err)
	}
	other.State, other.NomadReason = state, why
	if err := f.next(ctx, other); err != nil && !errors.Is(err, errPending) {
		f.log.Warn("replacing a taken runner", "job", other.GitHubJobID, "err", err)
	}
	return r, nil
}
