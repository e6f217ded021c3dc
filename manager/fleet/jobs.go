package fleet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/report"
	"github.com/buildfleet/buildfleet/manager/retry"
	"github.com/buildfleet/buildfleet/manager/store"
	"github.com/buildfleet/buildfleet/manager/trigger"
)

// HandleJob handles one workflow_job delivery. A nil or permanent error
// means the delivery is done; errPending means handle it again later.
func (f *Fleet) HandleJob(ctx context.Context, d store.Delivery) error {
	e, err := parseJob(d.Payload)
	if err != nil {
		return err
	}
	e.receivedAt = d.ReceivedAt
	req, err := f.st.RequestByRun(ctx, e.WorkflowJob.RunID)
	if errors.Is(err, store.ErrNotFound) && f.dispatchInFlight(ctx, d, e.WorkflowJob.RunID) {
		// GitHub queues a run's jobs as it answers the dispatch: the queued
		// event can come before the trigger has stored the run id. Wait.
		return errPending
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && !strings.EqualFold(req.Repo, e.Repository.FullName)) {
		// Not a run we dispatched: whatever its labels, it gets nothing
		// (security model, point 6), and nothing is recorded.
		f.log.Debug("job of a foreign run ignored", "job", e.WorkflowJob.ID, "run", e.WorkflowJob.RunID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errPending, err)
	}
	f.touch(e.WorkflowJob.RunID)
	switch e.Action {
	case "queued":
		return f.queued(ctx, req, e)
	case "in_progress":
		return f.inProgress(ctx, req, e)
	case "completed":
		return f.completed(ctx, req, e)
	}
	return nil
}

// queued starts a runner for the job, or resumes the attempt a crash or a
// failure left behind.
func (f *Fleet) queued(ctx context.Context, req store.Request, e jobEvent) error {
	j := e.WorkflowJob
	if skip, err := f.scaleSetQueued(ctx, req, e); skip || err != nil {
		return err
	}
	attempt := 1
	last, err := f.st.LatestRunner(ctx, j.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("%w: %w", errPending, err)
	case last.State == StateStarting:
		return f.start(ctx, req, last)
	case last.State != StateFailed:
		return nil // already started, running or finished: a replay
	case last.Attempt >= maxAttempts:
		if last.Reported == "error" {
			return nil
		}
		return f.report(ctx, req, last, "error", fmt.Sprintf("no runner started after %d attempts", last.Attempt))
	default:
		attempt = last.Attempt + 1
	}
	pool, desc := f.builderPool(req, j.Labels)
	if pool == nil {
		f.log.Warn("job not on a builder's label", "request", req.ID, "job", j.ID, "labels", j.Labels, "reason", desc)
		return f.publish(ctx, req, store.Runner{GitHubJobID: j.ID, Pool: j.Name, HTMLURL: j.HTMLURL}, "error", desc)
	}
	r, err := f.admitRunner(ctx, *pool, store.Runner{
		GitHubJobID: j.ID, Attempt: attempt, RunID: j.RunID, RequestID: req.ID, Repo: req.Repo,
		Pool: pool.Name, RunnerName: runnerName(pool.Name, j.ID, attempt), HTMLURL: j.HTMLURL, State: StateStarting,
		ReceivedAt: e.receivedAt,
	})
	var full poolFull
	if errors.As(err, &full) {
		return f.heldBack(ctx, req, *pool, e, full.active, attempt)
	}
	if err != nil {
		return err
	}
	f.unhold(j.ID)
	return f.start(ctx, req, r)
}

// admitRunner records a new attempt if the pool has room (max_runners
// counts starting, dispatched and running attempts).
func (f *Fleet) admitRunner(ctx context.Context, pool config.Pool, r store.Runner) (store.Runner, error) {
	f.admit.Lock()
	defer f.admit.Unlock()
	n, err := f.st.ActiveRunners(ctx, pool.Name, activeStates...)
	if err != nil {
		return r, fmt.Errorf("%w: %w", errPending, err)
	}
	if n >= pool.MaxRunners {
		f.log.Debug("pool full, job waits", "pool", pool.Name, "job", r.GitHubJobID, "active", n)
		return r, poolFull{active: n}
	}
	r, err = f.st.CreateRunner(ctx, r)
	if err != nil {
		return r, fmt.Errorf("%w: %w", errPending, err)
	}
	return r, nil
}

// poolFull is the errPending of a job that max_runners keeps back.
type poolFull struct{ active int }

func (p poolFull) Error() string { return fmt.Sprintf("pool full (%d active)", p.active) }
func (p poolFull) Unwrap() error { return errPending }

// start takes a runner row in state starting to dispatched: a JIT config
// from GitHub, then a Nomad dispatch. The JIT config is never stored. If
// the process died after GitHub issued it and before recording its id,
// the registration is removed and the same attempt registers again (see
// resumeRegistration): no runner can have that config, and a restart must
// not use up the job's attempts. Once the id is recorded the secret may
// have reached the child: a runner that connected with it goes on, any
// other attempt is abandoned (its child stopped, which blames no host).
func (f *Fleet) start(ctx context.Context, req store.Request, r store.Runner) error {
	pool := f.pool(r.Pool)
	if pool == nil {
		return f.fail(ctx, r, nil, fmt.Errorf("pool %s no longer configured", r.Pool))
	}
	var err error
	if r.RunnerID != 0 {
		if gr, err := f.registration(ctx, r); err == nil && gr != nil && (gr.Busy || gr.Status == "online") {
			return f.markDispatched(ctx, req, r, *pool)
		}
		return f.fail(ctx, r, pool, errors.New("JIT config lost in a restart"))
	}
	// The child first: its task waits for the JIT config, which is fetched
	// and written while Nomad places the allocation. The idempotency token
	// makes a retry of this attempt find the same child.
	nr := nomad.Runner{Name: r.RunnerName, GitHubJobID: r.GitHubJobID, Attempt: r.Attempt}
	if nr.Package, err = f.runnerPackage(ctx, *pool); err != nil {
		f.log.Warn("no runner package yet, runner waits", "runner", r.RunnerName, "err", err)
		return fmt.Errorf("%w: %w", errPending, err)
	}
	child, err := f.dispatchChild(ctx, *pool, nr)
	if err != nil {
		f.log.Warn("nomad dispatch failed, runner waits", "runner", r.RunnerName, "err", err)
		return fmt.Errorf("%w: %w", errPending, err)
	}
	at := f.now()
	if err := f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{NomadJobID: &child, DispatchedAt: &at}); err != nil {
		return fmt.Errorf("%w: %w", errPending, err)
	}
	r.NomadJobID = child
	b, ok := builderNamed(req, r.Pool)
	if !ok {
		return f.fail(ctx, r, pool, fmt.Errorf("request %s has no builder %s", req.ID, r.Pool))
	}
	// The builder's binding label is the runner's only label: no other job
	// can ask for it (see trigger.Builder). A scale set's runner has the
	// set's label instead, and takes only jobs the set acquired.
	id, jit, err := f.jitConfig(ctx, *pool, req.Repo, r.RunnerName, b.Labels)
	if errors.Is(err, github.ErrConflict) {
		// The name is this attempt's own: a run of this step before a
		// restart registered it and died before recording the id. No
		// runner has its config (the secret is written after the id).
		if ferr := f.resumeRegistration(ctx, r); ferr != nil {
			return f.fail(ctx, r, pool, fmt.Errorf("runner name taken (an earlier try registered it): %w", ferr))
		}
		id, jit, err = f.jitConfig(ctx, *pool, req.Repo, r.RunnerName, b.Labels)
	}
	if errors.Is(err, github.ErrConflict) {
		return f.fail(ctx, r, pool, fmt.Errorf("runner name taken (an earlier try registered it): %w", err))
	}
	if err != nil && !retry.Permanent(err) {
		// GitHub's 5xx, a rate limit or the network: not the runner's
		// failure, so it spends none of the job's attempts. The child waits
		// for its variable; the next pass asks again under the same name
		// (a registration GitHub made before failing to answer shows as a
		// conflict, above).
		f.log.Warn("JIT config not issued, runner waits", "runner", r.RunnerName, "err", err)
		return fmt.Errorf("%w: generating the JIT config: %w", errPending, err)
	}
	if err != nil {
		return f.fail(ctx, r, pool, fmt.Errorf("generating the JIT config: %w", err))
	}
	r.RunnerID = id
	if err := f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{RunnerID: &id}); err != nil {
		return f.fail(ctx, r, pool, err)
	}
	nr.JITConfig = jit
	if err := f.writeSecret(ctx, *pool, nr); err != nil {
		return f.fail(ctx, r, pool, err)
	}
	return f.markDispatched(ctx, req, r, *pool)
}

// markDispatched records that an attempt's runner has its JIT config.
func (f *Fleet) markDispatched(ctx context.Context, req store.Request, r store.Runner, pool config.Pool) error {
	state := StateDispatched
	if err := f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{State: &state}); err != nil {
		return fmt.Errorf("%w: %w", errPending, err)
	}
	f.log.Info("runner dispatched", "request", req.ID, "job", r.GitHubJobID, "attempt", r.Attempt,
		"pool", pool.Name, "runner", r.RunnerName, "nomad_job", r.NomadJobID)
	return nil
}

// fail abandons an attempt: its GitHub registration and its JIT variable
// are removed (best effort), the row is marked failed, and the delivery is
// left pending so that the next pass starts the next attempt.
func (f *Fleet) fail(ctx context.Context, r store.Runner, pool *config.Pool, cause error) error {
	f.log.Warn("runner attempt failed", "job", r.GitHubJobID, "attempt", r.Attempt, "runner", r.RunnerName, "err", cause)
	if r.RunnerID != 0 {
		owner, repo := splitRepo(r.Repo)
		if err := f.gh.DeleteRunner(ctx, owner, repo, r.RunnerID); err != nil && !errors.Is(err, github.ErrNotFound) {
			f.log.Warn("deleting runner registration", "runner", r.RunnerName, "err", err)
		}
	}
	if r.NomadJobID != "" {
		// Its task would wait for a JIT config forever.
		if err := f.nm.StopRunner(ctx, r.NomadJobID); err != nil {
			f.log.Warn("stopping the child of a failed attempt", "runner", r.RunnerName, "err", err)
		}
	}
	if pool != nil {
		if err := f.nm.DeleteRunnerSecret(ctx, *pool, r.RunnerName); err != nil {
			f.log.Warn("deleting JIT variable", "runner", r.RunnerName, "err", err)
		}
	}
	state := StateFailed
	if err := f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{State: &state}); err != nil {
		return fmt.Errorf("%w: %w", errPending, err)
	}
	return fmt.Errorf("%w: runner %s: %w", errPending, r.RunnerName, cause)
}

// inProgress records that a runner took the job and reports it pending.
// The runner has read its JIT config by now, so the variable goes.
func (f *Fleet) inProgress(ctx context.Context, req store.Request, e jobEvent) error {
	r, err := f.st.LatestRunner(ctx, e.WorkflowJob.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errPending, err)
	}
	if r.State == StateCompleted || r.State == StateLost {
		return nil // a late or replayed event, or a runner already lost
	}
	name := r.RunnerName
	if rn := e.WorkflowJob.RunnerName; rn != nil && *rn != "" {
		name = *rn
	}
	if name != r.RunnerName {
		if r, err = f.takenBy(ctx, r, name); err != nil {
			return err
		}
	}
	state, url := StateRunning, e.WorkflowJob.HTMLURL
	if err := f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{State: &state, HTMLURL: &url}); err != nil {
		return fmt.Errorf("%w: %w", errPending, err)
	}
	started := f.now()
	_ = f.st.MarkRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerMarks{StartedAt: &started})
	r.HTMLURL = url
	pool := f.pool(r.Pool)
	if pool != nil && r.TakenBy == "" {
		if err := f.nm.DeleteRunnerSecret(ctx, *pool, r.RunnerName); err != nil {
			f.log.Warn("deleting JIT variable", "runner", r.RunnerName, "err", err)
		}
	}
	if r.Reported != "" && !r.Waiting {
		return nil
	}
	if r.TakenBy == "" {
		name = f.hostOf(ctx, r) // the host, once Nomad said where it runs
	}
	if err := f.report(ctx, req, r, "pending", "running on "+name); err != nil {
		return err
	}
	if r.Waiting {
		no := false
		return f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{Waiting: &no})
	}
	return nil
}

// completed records the job's conclusion, reports it, and cleans up the
// Nomad child and its variable.
func (f *Fleet) completed(ctx context.Context, req store.Request, e jobEvent) error {
	j := e.WorkflowJob
	conclusion := ""
	if j.Conclusion != nil {
		conclusion = *j.Conclusion
	}
	r, err := f.st.LatestRunner(ctx, j.ID)
	if errors.Is(err, store.ErrNotFound) {
		// Completed (e.g. cancelled) before a runner was started: record it,
		// so that a queued event still pending starts nothing.
		pool, _ := f.builderPool(req, j.Labels)
		if pool == nil {
			return nil
		}
		r, err = f.st.CreateRunner(ctx, store.Runner{
			GitHubJobID: j.ID, Attempt: 1, RunID: j.RunID, RequestID: req.ID, Repo: req.Repo, Pool: pool.Name,
			RunnerName: runnerName(pool.Name, j.ID, 1), HTMLURL: j.HTMLURL, State: StateCompleted, Conclusion: conclusion,
		})
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errPending, err)
	}
	f.unhold(j.ID)
	if r.State == StateLost && conclusion != "success" {
		// GitHub gave up on a runner we already reported lost: the result
		// stays the fleet's error, not the PR's failure. Its registration
		// is idle now and can go at once, not at the next orphan sweep.
		if r.RunnerID != 0 {
			owner, repo := splitRepo(r.Repo)
			if err := f.gh.DeleteRunner(ctx, owner, repo, r.RunnerID); err != nil && !errors.Is(err, github.ErrNotFound) {
				f.log.Warn("deleting a lost runner's registration", "runner", r.RunnerName, "err", err)
			}
		}
		return f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{Conclusion: &conclusion})
	}
	if conclusion == "failure" && (r.State == StateRunning || r.State == StateDispatched) && r.TakenBy == "" && r.NomadJobID != "" {
		// A runner its host killed mid-job reports the job failed as it
		// goes: the fleet's error, not the PR's failure. (Dispatched: its
		// in_progress was not handled yet.)
		if why, err := f.killed(ctx, r); err != nil {
			return err
		} else if why != "" {
			return f.lost(ctx, req, r, why)
		}
	}
	st, desc := statusOf(conclusion)
	if r.State == StateCompleted && r.Reported == st {
		return nil // a replay: reported and cleaned up already
	}
	state := StateCompleted
	if err := f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{
		State: &state, Conclusion: &conclusion, HTMLURL: &j.HTMLURL}); err != nil {
		return fmt.Errorf("%w: %w", errPending, err)
	}
	r.HTMLURL = j.HTMLURL
	finished := f.now()
	_ = f.st.MarkRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerMarks{FinishedAt: &finished})
	if f.hh != nil && r.State == StateRunning && r.TakenBy == "" && (conclusion == "success" || conclusion == "failure") {
		// The host ran a build to its end: its earlier failures are no
		// longer in a row.
		// Only a host Nomad named: the runner's name (hostOf's fallback)
		// would leave a reset mark per build in the store, for good.
		if node := f.nodeOf(ctx, r); node != "" {
			f.hh.RecordSuccess(ctx, node)
		}
	}
	pool := f.pool(r.Pool)
	switch {
	case r.TakenBy != "":
		// Another job's runner ran it; this attempt's own runner may be
		// running that other job now. The orphan sweep stops it once it is
		// neither busy nor accounted for.
	case r.State == StateDispatched && j.RunnerName != nil && *j.RunnerName == r.RunnerName:
		// Its own runner ran it and its in_progress was not handled yet:
		// GitHub removed the ephemeral registration with the job, so a
		// removal would only spend a write for a 404.
		if r.NomadJobID != "" {
			if err := f.nm.StopRunner(ctx, r.NomadJobID); err != nil {
				f.log.Warn("stopping runner job", "nomad_job", r.NomadJobID, "err", err)
			}
		}
	case r.State == StateStarting || r.State == StateDispatched:
		// Cancelled (or completed elsewhere) while the runner was pending.
		f.release(ctx, r)
	case r.NomadJobID != "":
		if err := f.nm.StopRunner(ctx, r.NomadJobID); err != nil {
			f.log.Warn("stopping runner job", "nomad_job", r.NomadJobID, "err", err)
		}
	}
	if pool != nil && r.RunnerID != 0 && r.TakenBy == "" {
		// With TakenBy, this attempt's own runner may still wait for its
		// variable in the template step; it goes when that runner ends.
		if err := f.nm.DeleteRunnerSecret(ctx, *pool, r.RunnerName); err != nil {
			f.log.Warn("deleting JIT variable", "runner", r.RunnerName, "err", err)
		}
	}
	f.freed()
	f.log.Info("job completed", "request", req.ID, "job", j.ID, "pool", r.Pool, "conclusion", conclusion)
	return f.report(ctx, req, r, st, desc)
}

// report puts the builder's result on the PR head SHA the request was
// made for (not the run's head_sha, which is the default branch's) and
// remembers it, so that a replay does not report it again.
func (f *Fleet) report(ctx context.Context, req store.Request, r store.Runner, state, desc string) error {
	// A superseded request's results would land on the same names as the
	// request that replaced it (same SHA or not, same builders) and could
	// overwrite them: its cancelled jobs are not reported.
	if req.State != trigger.StateSuperseded {
		if err := f.publish(ctx, req, r, state, desc); err != nil {
			return err
		}
	}
	return f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{Reported: &state})
}

// publish hands a result to the reporter's durable queue (check run or
// status, paced, coalesced; see the report package). Without a reporter
// (unit tests) it posts the status itself.
func (f *Fleet) publish(ctx context.Context, req store.Request, r store.Runner, state, desc string) error {
	phase := ""
	switch {
	case state == "pending" && strings.HasPrefix(desc, "running on "):
		phase = phaseRunning
	case state == "pending" && strings.HasPrefix(desc, noHostPrefix):
		phase = phaseNoHost
	}
	return f.publishAs(ctx, req, r, state, phase, desc)
}

// publishAs is publish with the phase of a pending result named.
func (f *Fleet) publishAs(ctx context.Context, req store.Request, r store.Runner, state, phase, desc string) error {
	if f.rep == nil && (phase == phaseQueued || phase == phasePoolFull || phase == phasePlaced) {
		return nil // the steps of a wait need the queue's coalescing
	}
	if f.rep == nil {
		owner, repo := splitRepo(req.Repo)
		if err := f.gh.CreateStatus(ctx, owner, repo, req.SHA, state, r.HTMLURL, desc, "buildfleet/"+r.Pool); err != nil {
			return fmt.Errorf("%w: %w", errPending, err)
		}
		return nil
	}
	res := report.Result{Request: report.RequestOf(req), Pool: r.Pool, JobID: r.GitHubJobID, HTMLURL: r.HTMLURL,
		Host: f.hostOf(ctx, r), State: state, Phase: phase, Description: desc, Conclusion: r.Conclusion}
	if phase == phaseRunning {
		res.StartedAt = f.now() // a runner took the job: in progress
	} else if state != "pending" {
		res.CompletedAt = f.now()
	}
	if err := f.rep.Report(ctx, res); err != nil {
		return fmt.Errorf("%w: %w", errPending, err)
	}
	return nil
}

// inFlightWait bounds how long a job of an unknown run waits for a
// dispatch in flight to be recorded before it is taken as foreign.
const inFlightWait = 2 * time.Minute

// dispatchInFlight tells whether a job of a run not (yet) known may be
// ours: a request is between dispatching and recording its run id, and
// the delivery is recent. Such a job waits; it is never started unknown.
func (f *Fleet) dispatchInFlight(ctx context.Context, d store.Delivery, runID int64) bool {
	if f.now().Sub(d.ReceivedAt) > inFlightWait {
		return false
	}
	open, err := f.st.OpenRequests(ctx)
	if err != nil {
		return true // cannot tell: wait and ask again
	}
	for _, r := range open {
		// The run may have been recorded after the caller looked it up
		// (and the request marked dispatched since): ask again.
		if r.RunID == runID || r.State != trigger.StateDispatched && r.DispatchTries > 0 {
			return true
		}
	}
	return false
}

func (f *Fleet) pool(name string) *config.Pool {
	for i := range f.cfg.Pools {
		if f.cfg.Pools[i].Name == name {
			return &f.cfg.Pools[i]
		}
	}
	return nil
}

func splitRepo(name string) (string, string) {
	o, r, _ := strings.Cut(name, "/")
	return o, r
}
