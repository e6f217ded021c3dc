package fleet

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/store"
)

// kvNomadIndex is the store key of the highest Nomad index handled: Watch
// resumes after it on a restart.
const kvNomadIndex = "fleet.nomad_index"

// watchFrom reads the index to resume the Nomad watch from.
func (f *Fleet) watchFrom(ctx context.Context) uint64 {
	v, err := f.st.GetKV(ctx, kvNomadIndex)
	if err != nil {
		f.log.Warn("reading nomad index", "err", err)
		return 0
	}
	n, _ := strconv.ParseUint(v, 10, 64)
	return n
}

// follow applies what Nomad says of one runner to its attempt:
//
//	dispatched ─pending/blocked─▶ (blocked longer than WaitingAfter: "waiting for a host")
//	           ─placed─▶ ─running─▶ JIT variable deleted
//	           ─failed before the job was taken, GitHub refused the runner as
//	               outdated (its log says so)─▶ next attempt if GitHub now lists a
//	               newer release, else status error "GitHub refused runner X as outdated"
//	           ─failed/lost/stopped before the job was taken─▶ attempt failed,
//	               registration and variable deleted, next attempt (≤ maxAttempts),
//	               then status error "the fleet could not start a runner: <reason>"
//
// A child with no attempt of ours that is still active is stopped.
func (f *Fleet) follow(ctx context.Context, u nomad.Update) {
	if u.Reconnected {
		// Nomad may have restarted without its state: register the pool
		// jobs it lost now, not when a runner needs one.
		f.keepPools(ctx)
		return
	}
	defer f.saveIndex(ctx, u.Index)
	if f.pool(u.Pool) == nil {
		// A pool this manager does not serve (another manager's, or an
		// operator's test): not ours to follow or to stop.
		return
	}
	f.changed = true
	r, err := f.st.RunnerByName(ctx, u.RunnerName)
	if errors.Is(err, store.ErrNotFound) {
		if !u.State.Final() {
			f.log.Warn("stopping a runner job we have no record of", "nomad_job", u.DispatchedJobID)
			if err := f.nm.StopRunner(ctx, u.DispatchedJobID); err != nil {
				f.log.Warn("stopping runner job", "nomad_job", u.DispatchedJobID, "err", err)
			}
		}
		return
	}
	if err != nil {
		f.log.Error("reading runner", "runner", u.RunnerName, "err", err)
		return
	}
	ns, why := string(u.State), u.Reason
	if err := f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{NomadState: &ns, NomadReason: &why}); err != nil {
		f.log.Error("recording nomad state", "runner", r.RunnerName, "err", err)
	}
	r.NomadState, r.NomadReason = ns, why
	f.log.Debug("runner", "runner", r.RunnerName, "nomad_state", ns, "reason", why)
	switch u.State {
	case nomad.StatePlaced:
		f.placed(ctx, r, u)
	case nomad.StateRunning:
		f.placed(ctx, r, u)
		// The template has rendered the JIT config into the task's secrets
		// dir: the variable is no longer needed in Nomad.
		if pool := f.pool(r.Pool); pool != nil {
			if err := f.nm.DeleteRunnerSecret(ctx, *pool, r.RunnerName); err != nil {
				f.log.Warn("deleting JIT variable", "runner", r.RunnerName, "err", err)
			}
		}
	case nomad.StateComplete:
		switch r.State {
		case StateRunning:
			// Normally the job's completed webhook is on its way; if it
			// never comes, reconciliation finds out (see gone).
			f.checkSoon(r.RunID, f.now().Add(lostGrace))
		case StateDispatched:
			// Exited without taking its job (stopped while it waited), or
			// took it and its in_progress is late: GitHub tells which.
			f.checkSoon(r.RunID, f.now())
		}
	case nomad.StateFailed, nomad.StateLost, nomad.StateStopped:
		if r.State == StateRunning {
			// Killed, exit 137, host lost: ask GitHub what became of the
			// job now rather than leave it "running" (see lost).
			f.checkSoon(r.RunID, f.now())
			return
		}
		if r.State != StateDispatched {
			return // the job was taken, finished, or we stopped it ourselves
		}
		// The job's in_progress webhook may be stored but not handled yet.
		f.pass(ctx)
		if r, err = f.st.Runner(ctx, r.GitHubJobID, r.Attempt); err != nil || r.State != StateDispatched {
			if err == nil && r.State == StateRunning {
				f.checkSoon(r.RunID, f.now())
			}
			return
		}
		if v, refused := f.refusedVersion(ctx, u.AllocID); refused {
			if err := f.outdated(ctx, r, v); err != nil && !errors.Is(err, errPending) {
				f.log.Warn("reporting an outdated runner", "runner", r.RunnerName, "err", err)
			}
			return
		}
		if why == "" {
			why = "allocation " + ns
		}
		f.hostFailed(ctx, r, u, why)
		if err := f.replace(ctx, r, why); err != nil && !errors.Is(err, errPending) {
			f.log.Warn("replacing runner", "runner", r.RunnerName, "err", err)
		}
	}
}

func (f *Fleet) saveIndex(ctx context.Context, idx uint64) {
	if idx == 0 || idx <= f.index {
		return
	}
	f.index = idx
	if err := f.st.PutKV(ctx, kvNomadIndex, strconv.FormatUint(idx, 10)); err != nil {
		f.log.Warn("saving nomad index", "err", err)
	}
}

// replace abandons an attempt whose runner never took its job (its
// allocation failed, was lost or stopped) and starts the next one with a
// new JIT config, or, after maxAttempts, reports the job as the fleet's
// error with Nomad's reason.
func (f *Fleet) replace(ctx context.Context, r store.Runner, reason string) error {
	f.log.Warn("runner ended before taking its job", "job", r.GitHubJobID, "attempt", r.Attempt,
		"runner", r.RunnerName, "reason", reason)
	if r.NomadJobID != "" {
		if err := f.nm.StopRunner(ctx, r.NomadJobID); err != nil {
			f.log.Warn("purging runner job", "nomad_job", r.NomadJobID, "err", err)
		}
	}
	if err := f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{NomadReason: &reason}); err != nil {
		return err
	}
	r.NomadReason = reason
	_ = f.fail(ctx, r, f.pool(r.Pool), errors.New(reason))
	r.State = StateFailed
	return f.next(ctx, r)
}

// next starts the attempt after a failed one, or reports the job as the
// fleet's error once maxAttempts have failed.
func (f *Fleet) next(ctx context.Context, last store.Runner) error {
	req, err := f.st.Request(ctx, last.RequestID)
	if err != nil {
		return fmt.Errorf("%w: %w", errPending, err)
	}
	if last.Attempt >= maxAttempts {
		if last.Reported == "error" {
			return nil
		}
		why := last.NomadReason
		if why == "" {
			why = fmt.Sprintf("no runner started after %d attempts", last.Attempt)
		}
		if err := f.report(ctx, req, last, "error", "the fleet could not start a runner: "+why); err != nil {
			return err
		}
		return f.close(ctx, last, StateGaveUp)
	}
	pool := f.pool(last.Pool)
	if pool == nil {
		return fmt.Errorf("pool %s no longer configured", last.Pool)
	}
	r, err := f.st.CreateRunner(ctx, store.Runner{
		GitHubJobID: last.GitHubJobID, Attempt: last.Attempt + 1, RunID: last.RunID, RequestID: last.RequestID,
		Repo: last.Repo, Pool: last.Pool, RunnerName: runnerName(pool.Name, last.GitHubJobID, last.Attempt+1),
		HTMLURL: last.HTMLURL, State: StateStarting, ReceivedAt: f.now(),
	})
	if err != nil {
		return fmt.Errorf("%w: %w", errPending, err)
	}
	if err := f.close(ctx, last, StateReplaced); err != nil {
		return err
	}
	if r.State != StateStarting {
		return nil
	}
	return f.start(ctx, req, r)
}

// close moves a failed attempt out of the open states.
func (f *Fleet) close(ctx context.Context, r store.Runner, state string) error {
	if err := f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{State: &state}); err != nil {
		return fmt.Errorf("%w: %w", errPending, err)
	}
	f.freed()
	return nil
}

// sweep moves on attempts left between steps: a starting attempt whose
// delivery is already handled (a replacement that could not start yet,
// e.g. Nomad down) and the latest failed attempt of a job still waiting
// for a runner. It also reports the jobs that have waited for a host
// longer than WaitingAfter.
func (f *Fleet) sweep(ctx context.Context) {
	rs, err := f.st.RunnersInState(ctx, StateStarting, StateFailed, StateDispatched)
	if err != nil {
		f.log.Error("listing open runners", "err", err)
		return
	}
	for _, r := range rs {
		if ctx.Err() != nil {
			return
		}
		if f.starts.busy("", r.GitHubJobID, 0) {
			continue // a pass's start in flight (see starts)
		}
		// Read again: the list is older than the busy check, and a start
		// that ended in between moved the row on (acting on the old row
		// would take a runner that just got its JIT config for one a
		// restart left, and stop it under the job it took). Only this
		// loop starts the goroutines, so none begins until the sweep ends.
		l, err := f.st.LatestRunner(ctx, r.GitHubJobID)
		if err != nil || l.Attempt != r.Attempt {
			if err == nil && r.State == StateFailed {
				_ = f.close(ctx, r, StateReplaced) // left by the delivery path
			}
			continue
		}
		if l.State != r.State {
			continue // moved on since the list; the next sweep sees it
		}
		r = l
		switch r.State {
		case StateStarting:
			var req store.Request
			if req, err = f.st.Request(ctx, r.RequestID); err == nil {
				err = f.start(ctx, req, r)
			}
		case StateFailed:
			if r.Reported == "error" {
				err = f.close(ctx, r, StateGaveUp)
				break
			}
			err = f.next(ctx, r)
		case StateDispatched:
			err = f.checkWaiting(ctx, r)
		}
		if err == nil && (r.State == StateStarting || r.State == StateDispatched) {
			err = f.checkQueuedNow(ctx, r)
		}
		if err != nil && !errors.Is(err, errPending) {
			f.log.Warn("moving runner on", "runner", r.RunnerName, "err", err)
		}
	}
}

// checkWaiting reports "waiting for a host" once for an attempt that Nomad
// has not placed after WaitingAfter. The reason is Nomad's own (a blocked
// evaluation's placement failures).
func (f *Fleet) checkWaiting(ctx context.Context, r store.Runner) error {
	if r.Waiting || r.DispatchedAt.IsZero() || f.now().Sub(r.DispatchedAt) < f.waitingAfter {
		return nil
	}
	if r.NomadState != "" && r.NomadState != string(nomad.StatePending) && r.NomadState != string(nomad.StateBlocked) {
		return nil
	}
	why := r.NomadReason
	if why == "" && r.NomadJobID != "" {
		var err error
		if why, err = f.nm.BlockedReason(ctx, r.NomadJobID); err != nil {
			return err
		}
	}
	if why == "" {
		return nil // not blocked: just not evaluated yet
	}
	req, err := f.st.Request(ctx, r.RequestID)
	if err != nil {
		return err
	}
	f.log.Info("runner waits for a host", "runner", r.RunnerName, "reason", why)
	if err := f.report(ctx, req, r, "pending", noHostPrefix+" in "+r.Pool+": "+why); err != nil {
		return err
	}
	yes := true
	return f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{Waiting: &yes})
}
