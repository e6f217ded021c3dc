package fleet

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/store"
)

// Phases of a builder's pending result on its way to a host. The report
// queue writes a pending result only when its phase changes, so a builder
// that waits costs one queued write, however often the wait is looked at:
//
//	queued ("queued: waiting for a host in <pool>, N ahead", after QueuedAfter)
//	pool_full ("queued: <pool> is full (n of n runners busy), N ahead", at once)
//	no_host ("queued: no eligible host in <pool>: <Nomad's reason>", after WaitingAfter)
//	placed ("host found: <host>", only after one of the above was posted)
//	running ("running on <host>")
//
// A builder that has no host after the pool's wait_timeout gets a final
// fleet error with the last reason it waited for (see giveUp), so that
// every request ends and its summary comes.
const (
	phaseQueued   = "queued"
	phasePoolFull = "pool_full"
	phaseNoHost   = "no_host"
	phasePlaced   = "placed"
	phaseRunning  = "running"
)

// noHostPrefix starts the no_host description.
const noHostPrefix = "queued: no eligible host"

// Waiting is one builder without a host, as the queue page shows it.
type Waiting struct {
	RequestID string    `json:"request_id"`
	Repo      string    `json:"repo"`
	JobID     int64     `json:"job_id"`
	JobURL    string    `json:"job_url,omitempty"`
	Pool      string    `json:"pool"`
	Since     time.Time `json:"since"`
	// State is held (the pool is at max_runners), starting (asking GitHub
	// and Nomad) or dispatched (Nomad has not placed it).
	State      string `json:"state"`
	RunnerName string `json:"runner_name,omitempty"`
	Reason     string `json:"reason"`
}

// held is a job the pool's max_runners keeps back: it has no runner row,
// only its unprocessed queued delivery, so the fleet keeps it in memory
// for the queue page and the "N ahead" count (rebuilt by the next pass
// after a restart).
type held struct {
	requestID, repo, pool, jobURL, reason string
	since                                 time.Time
}

func (f *Fleet) hold(jobID int64, h held) {
	f.heldMu.Lock()
	defer f.heldMu.Unlock()
	if f.held == nil {
		f.held = map[int64]held{}
	}
	f.held[jobID] = h
	f.expectLocked()
}

func (f *Fleet) unhold(jobID int64) {
	f.heldMu.Lock()
	defer f.heldMu.Unlock()
	delete(f.held, jobID)
	f.expectLocked()
}

// setWaiting records the jobs a pass left for a later one (no start slot
// free), but for the held ones (counted as held).
func (f *Fleet) setWaiting(jobs []int64) {
	f.heldMu.Lock()
	defer f.heldMu.Unlock()
	n := 0
	for _, id := range jobs {
		if _, ok := f.held[id]; !ok {
			n++
		}
	}
	if n != f.waiting {
		f.waiting = n
		f.expectLocked()
	}
}

// expectLocked tells GitHub's write budget how many JIT configs the
// builders it knows of and has not started will need: those max_runners
// holds back and those waiting for a start slot. Callers hold heldMu.
func (f *Fleet) expectLocked() {
	if f.expect != nil {
		f.expect(len(f.held) + f.waiting)
	}
}

// heldAhead counts the held jobs of a pool that came before since.
func (f *Fleet) heldAhead(pool string, since time.Time, jobID int64) int {
	f.heldMu.Lock()
	defer f.heldMu.Unlock()
	n := 0
	for id, h := range f.held {
		if h.pool == pool && id != jobID && (h.since.Before(since) || h.since.Equal(since) && id < jobID) {
			n++
		}
	}
	return n
}

// heldBack answers a queued job that max_runners keeps back: it is
// remembered, gets its pool_full result at once, and after the pool's
// wait_timeout it ends as a fleet error. errPending keeps the delivery.
func (f *Fleet) heldBack(ctx context.Context, req store.Request, pool config.Pool, e jobEvent, active, attempt int) error {
	j := e.WorkflowJob
	since := e.receivedAt
	if since.IsZero() {
		since = f.now()
	}
	reason := fmt.Sprintf("%s is full (%d of %d runners busy)", pool.Name, active, pool.MaxRunners)
	r := store.Runner{GitHubJobID: j.ID, Attempt: attempt, RunID: j.RunID, RequestID: req.ID, Repo: req.Repo,
		Pool: pool.Name, RunnerName: runnerName(pool.Name, j.ID, attempt), HTMLURL: j.HTMLURL, ReceivedAt: since}
	if f.now().Sub(since) >= waitTimeout(pool) {
		f.unhold(j.ID)
		r.State = StateGaveUp
		row, err := f.st.CreateRunner(ctx, r)
		if err != nil {
			return fmt.Errorf("%w: %w", errPending, err)
		}
		if row.State != StateGaveUp {
			return nil // a runner was started meanwhile
		}
		return f.giveUp(ctx, req, row, pool, reason)
	}
	f.hold(j.ID, held{requestID: req.ID, repo: req.Repo, pool: pool.Name, jobURL: j.HTMLURL, reason: reason, since: since})
	if f.now().Sub(since) < f.queuedAfter {
		// Like a builder waiting for a host: a slot that frees within
		// QueuedAfter makes a queued result a write replaced moments
		// later. The tick looks again (and the status page shows it).
		return errPending
	}
	desc := fmt.Sprintf("queued: %s, %d ahead", reason, f.heldAhead(pool.Name, since, j.ID))
	if err := f.publishAs(ctx, req, r, "pending", phasePoolFull, desc); err != nil {
		f.log.Warn("reporting a held job", "job", j.ID, "err", err)
	}
	return errPending
}

// giveUp ends a builder that got no host within the pool's wait_timeout
// as a fleet error naming the last reason it waited for, and releases
// whatever its attempt holds (Nomad child, variable, registration).
func (f *Fleet) giveUp(ctx context.Context, req store.Request, r store.Runner, pool config.Pool, reason string) error {
	f.log.Warn("builder got no host in time", "request", req.ID, "job", r.GitHubJobID, "pool", pool.Name,
		"wait_timeout", waitTimeout(pool), "reason", reason)
	if r.State == StateStarting || r.State == StateDispatched {
		f.release(ctx, r)
	}
	now := f.now()
	_ = f.st.MarkRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerMarks{FinishedAt: &now})
	desc := fmt.Sprintf("no host within %s: %s", waitTimeout(pool), reason)
	if err := f.report(ctx, req, r, "error", desc); err != nil {
		return err
	}
	return f.close(ctx, r, StateGaveUp)
}

// checkQueued looks at an attempt that has no host yet: past the pool's
// wait_timeout it is given up; past QueuedAfter it gets its queued result
// (unless a waiting result was posted already).
func (f *Fleet) checkQueued(ctx context.Context, r store.Runner) error {
	if r.NomadState == string(nomad.StatePlaced) || r.NomadState == string(nomad.StateRunning) {
		return nil
	}
	pool := f.pool(r.Pool)
	if pool == nil {
		return nil
	}
	since := waitSince(r)
	wait := f.now().Sub(since)
	if wait < f.queuedAfter {
		return nil
	}
	req, err := f.st.Request(ctx, r.RequestID)
	if err != nil {
		return err
	}
	if wait >= waitTimeout(*pool) {
		return f.giveUp(ctx, req, r, *pool, f.waitReason(r))
	}
	if r.Waiting {
		return nil
	}
	ahead, err := f.dispatchedAhead(ctx, r)
	if err != nil {
		return err
	}
	desc := fmt.Sprintf("queued: waiting for a host in %s, %d ahead", r.Pool, ahead)
	return f.publishAs(ctx, req, r, "pending", phaseQueued, desc)
}

func waitSince(r store.Runner) time.Time {
	if !r.ReceivedAt.IsZero() {
		return r.ReceivedAt
	}
	return r.CreatedAt
}

// waitReason is what an attempt without a host last waited for.
func (f *Fleet) waitReason(r store.Runner) string {
	switch {
	case r.NomadReason != "":
		return r.NomadReason
	case r.State == StateStarting:
		return "the runner could not be started (GitHub or Nomad unreachable)"
	default:
		return "Nomad placed no runner"
	}
}

// dispatchedAhead counts the attempts of the same pool that wait for a
// host and came before r.
func (f *Fleet) dispatchedAhead(ctx context.Context, r store.Runner) (int, error) {
	rs, err := f.st.RunnersInState(ctx, StateStarting, StateDispatched)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range rs {
		if o.Pool == r.Pool && o.GitHubJobID != r.GitHubJobID && waitSince(o).Before(waitSince(r)) &&
			o.NomadState != string(nomad.StatePlaced) && o.NomadState != string(nomad.StateRunning) {
			n++
		}
	}
	return n, nil
}

// Queue lists every builder that waits for a host, oldest first: held by
// max_runners, being started, or dispatched and not placed by Nomad.
func (f *Fleet) Queue(ctx context.Context) ([]Waiting, error) {
	rs, err := f.st.RunnersInState(ctx, StateStarting, StateDispatched)
	if err != nil {
		return nil, err
	}
	var out []Waiting
	for _, r := range rs {
		if r.NomadState == string(nomad.StatePlaced) || r.NomadState == string(nomad.StateRunning) {
			continue
		}
		reason := "waiting for Nomad to place it"
		switch {
		case r.NomadReason != "":
			reason = r.NomadReason
		case r.State == StateStarting:
			reason = "starting: asking GitHub for a runner and Nomad for a host"
		}
		out = append(out, Waiting{RequestID: r.RequestID, Repo: r.Repo, JobID: r.GitHubJobID, JobURL: r.HTMLURL,
			Pool: r.Pool, Since: waitSince(r), State: r.State, RunnerName: r.RunnerName, Reason: reason})
	}
	f.heldMu.Lock()
	for id, h := range f.held {
		out = append(out, Waiting{RequestID: h.requestID, Repo: h.repo, JobID: id, JobURL: h.jobURL, Pool: h.pool,
			Since: h.since, State: "held", Reason: h.reason})
	}
	f.heldMu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].JobID < out[j].JobID
	})
	return out, nil
}

// NodeNamer names the host behind a Nomad node ID; the Nomad client is
// one. Without it, results name the runner instead of the host.
type NodeNamer interface {
	NodeName(ctx context.Context, id string) (string, error)
}

// placed records the host of an attempt Nomad placed and, when the
// builder's result said it waits, says that a host was found.
func (f *Fleet) placed(ctx context.Context, r store.Runner, u nomad.Update) {
	now := f.now()
	marks := store.RunnerMarks{NodeID: &u.NodeID}
	if nn, ok := f.nm.(NodeNamer); ok && u.NodeID != "" {
		if name, err := nn.NodeName(ctx, u.NodeID); err == nil {
			marks.NodeName = &name
		} else {
			f.log.Warn("naming a node", "node", u.NodeID, "err", err)
		}
	}
	switch u.State {
	case nomad.StatePlaced:
		marks.PlacedAt = &now
	case nomad.StateRunning:
		marks.PlacedAt, marks.RunningAt = &now, &now
	}
	before, _ := f.st.RunnerTimes(ctx, r.GitHubJobID, r.Attempt)
	if err := f.st.MarkRunner(ctx, r.GitHubJobID, r.Attempt, marks); err != nil {
		f.log.Warn("recording placement", "runner", r.RunnerName, "err", err)
	}
	if before.PlacedAt.IsZero() && marks.PlacedAt != nil {
		f.m.queueWait.WithLabelValues(r.Pool).Observe(now.Sub(waitSince(r)).Seconds())
	}
	if before.RunningAt.IsZero() && marks.RunningAt != nil {
		if req, err := f.st.Request(ctx, r.RequestID); err == nil {
			f.m.labelToRunner.Observe(now.Sub(req.CreatedAt).Seconds())
		}
	}
	if !r.Waiting || r.State != StateDispatched || u.State != nomad.StatePlaced {
		return
	}
	req, err := f.st.Request(ctx, r.RequestID)
	if err != nil {
		return
	}
	host := u.NodeID
	if marks.NodeName != nil {
		host = *marks.NodeName
	}
	if err := f.publishAs(ctx, req, r, "pending", phasePlaced, "host found: "+host+", starting the runner"); err != nil {
		f.log.Warn("reporting a placement", "runner", r.RunnerName, "err", err)
	}
}

// hostOf names where an attempt runs: its host when Nomad placed it, else
// its runner.
func (f *Fleet) hostOf(ctx context.Context, r store.Runner) string {
	if node := f.nodeOf(ctx, r); node != "" {
		return node
	}
	return r.RunnerName
}

// nodeOf is the host Nomad placed an attempt on, or "" before that.
func (f *Fleet) nodeOf(ctx context.Context, r store.Runner) string {
	if r.GitHubJobID != 0 {
		if t, err := f.st.RunnerTimes(ctx, r.GitHubJobID, r.Attempt); err == nil {
			return t.NodeName
		}
	}
	return ""
}

// checkQueuedNow is checkQueued on the attempt as stored now (the sweep's
// copy may be older than a step it just took).
func (f *Fleet) checkQueuedNow(ctx context.Context, r store.Runner) error {
	r, err := f.st.Runner(ctx, r.GitHubJobID, r.Attempt)
	if err != nil || (r.State != StateStarting && r.State != StateDispatched) {
		return err
	}
	return f.checkQueued(ctx, r)
}

// waitTimeout is the pool's wait_timeout, or the default for a pool built
// without config.ApplyDefaults.
func waitTimeout(p config.Pool) time.Duration {
	if p.WaitTimeout > 0 {
		return p.WaitTimeout.D()
	}
	return config.DefaultWaitTimeout
}

// HostHealth is told which hosts fail runners (notify.Tracker is one).
type HostHealth interface {
	RecordFailure(ctx context.Context, host, runner, kind, detail string)
	RecordSuccess(ctx context.Context, host string)
}

// Kinds of infrastructure failure (those of the notify package).
const (
	failureNeverStarted = "never_started"
	failureLost         = "lost"
	failureNotTaken     = "not_taken"
)

// hostFailed tells HostHealth that a runner placed on a host ended before
// taking its job. A child stopped on purpose, or never placed, blames no
// host.
func (f *Fleet) hostFailed(ctx context.Context, r store.Runner, u nomad.Update, why string) {
	if f.hh == nil || u.State == nomad.StateStopped {
		return
	}
	t, err := f.st.RunnerTimes(ctx, r.GitHubJobID, r.Attempt)
	if err != nil || t.NodeName == "" && u.NodeID == "" {
		return
	}
	host := t.NodeName
	if host == "" {
		if nn, ok := f.nm.(NodeNamer); ok {
			host, _ = nn.NodeName(ctx, u.NodeID)
		}
	}
	kind := failureNeverStarted
	switch {
	case u.State == nomad.StateLost:
		kind = failureLost
	case !t.RunningAt.IsZero():
		kind = failureNotTaken
	}
	f.hh.RecordFailure(ctx, host, r.RunnerName, kind, why)
}
