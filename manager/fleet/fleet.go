// Package fleet starts one ephemeral runner per GitHub job of a run that
// buildfleet dispatched, and reports each job's result on the PR.
//
// It consumes workflow_job deliveries (the trigger consumes pull_request
// ones; each marks only its own). A runner attempt moves through these
// states, each written to the store before the step it guards, so that a
// restart resumes a runner instead of starting a second one:
//
//	workflow_job.queued
//	   ├─ run not dispatched by us ──▶ ignored (nothing recorded, nothing started)
//	   ├─ labels are no builder's binding label ──▶ status error "runs-on […] is no builder's label …"
//	   ├─ pool at max_runners ──▶ delivery left pending (held), tried again when a slot frees or on the tick
//	   └─▶ starting ──Nomad up? JIT config──▶ (runner_id stored) ──Nomad dispatch──▶ dispatched
//	          └─ JIT config or dispatch failed ──▶ failed; next pass: attempt+1
//	dispatched, as Nomad's event stream says (Nomad state recorded on the row):
//	   pending/blocked ─longer than WaitingAfter─▶ status pending "waiting for a host: <Nomad's reason>" (once)
//	   placed ──▶ running ──▶ JIT variable deleted (the template has rendered it)
//	   failed/lost/stopped while the job is still queued ──▶ failed: registration,
//	      variable and child removed; attempt+1 with a new JIT config; after
//	      maxAttempts status error "the fleet could not start a runner: <reason>"
//	   exited (complete) or gone from Nomad while GitHub still lists the job
//	      queued (a stop signal, a Nomad that lost its state) ──▶ the same
//	      (found by reconciliation: see notWaiting)
//	workflow_job.in_progress ──▶ running        status pending "running on <runner>"
//	workflow_job.completed   ──▶ completed      status success / failure / error "cancelled"
//	                              (a failure whose runner Nomad killed or lost ──▶ lost:
//	                               status error, never the PR's failure; see killed)
//	                              (Nomad child stopped and purged, JIT variable deleted;
//	                               a runner still pending also loses its registration)
//	workflow_run.completed (cancelled) ──▶ every pending runner of the run released
//
// The loop resumes the Nomad stream from the last index it handled (kept
// in the store). Nomad unreachable: deliveries stay unprocessed (no JIT
// config is asked for) and the watch reconnects with backoff. Orphans —
// bf- registrations offline and unaccounted for, Nomad children of our
// pools without an active attempt — are removed at start and after
// changes.
//
// A queued job maps to its pool through its runs-on labels, which must be
// exactly one builder's binding label (made by the trigger at dispatch,
// stored with the request); the runner is registered with that label and
// no other, so no other job, ours or foreign, can take it (security model
// point 6). Should job A's in_progress still name the runner started for
// job B (a request recorded before binding labels), A's row records it
// (taken_by), B's attempt becomes failed ("its runner took job A") and B
// gets a new attempt; the orphan sweep stops A's own runner if it is idle
// and unaccounted for (never while GitHub says it is busy). See takenBy.
//
// A lost webhook (queued, in_progress, completed, workflow_run) is made up
// for by reconciliation (reconcile.go): each run in flight is compared with
// GitHub's list of its jobs at start and when it has been quiet. A runner
// that ends while it runs its job (killed, host lost) is "lost": the
// fleet's error, never the PR's failure.
//
// Writes to GitHub per builder in steady state: the JIT config, the
// in-progress status and the final status (no "queued" status).
package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/actrunner"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/report"
	"github.com/buildfleet/buildfleet/manager/retry"
	"github.com/buildfleet/buildfleet/manager/runnerpkg"
	"github.com/buildfleet/buildfleet/manager/store"
)

// Runner states (store.Runner.State).
const (
	StateStarting   = "starting"
	StateDispatched = "dispatched"
	StateRunning    = "running"
	StateCompleted  = "completed"
	StateFailed     = "failed"
	// StateReplaced and StateGaveUp close a failed attempt once the next
	// one exists or the job was reported as the fleet's error, so that the
	// sweep only ever reads the attempts still in flight.
	StateReplaced = "replaced"
	StateGaveUp   = "gave_up"
)

// activeStates occupy a slot of the pool's max_runners.
var activeStates = []string{StateStarting, StateDispatched, StateRunning}

// maxAttempts bounds the runners started for one job after failures to
// start one.
const maxAttempts = 3

// GitHub is what the fleet needs from GitHub.
type GitHub interface {
	GenerateJITConfig(ctx context.Context, owner, repo, name string, runnerGroupID int64, labels []string) (int64, config.Secret, error)
	DeleteRunner(ctx context.Context, owner, repo string, runnerID int64) error
	CreateStatus(ctx context.Context, owner, repo, sha, state, targetURL, description, statusContext string) error
	// ListRunners finds registrations left by dead runners (orphans).
	ListRunners(ctx context.Context, owner, repo string) ([]github.SelfHostedRunner, error)
}

// Reporter is what the fleet needs from the report queue.
type Reporter interface {
	Report(ctx context.Context, res report.Result) error
}

// Nomad is what the fleet needs from Nomad.
type Nomad interface {
	// DispatchChild comes before the JIT config: with Nomad down, a config
	// would be a wasted GitHub write and a registration to delete; and the
	// config is then written while Nomad places the allocation, off the
	// path from label to runner.
	DispatchChild(ctx context.Context, pool config.Pool, r nomad.Runner) (string, error)
	WriteRunnerSecret(ctx context.Context, pool config.Pool, r nomad.Runner) error
	StopRunner(ctx context.Context, dispatchedJobID string) error
	DeleteRunnerSecret(ctx context.Context, pool config.Pool, runnerName string) error
	// Watch follows the runners' states (see follow).
	Watch(ctx context.Context, fromIndex uint64) <-chan nomad.Update
	// BlockedReason says why a child waits for a host.
	BlockedReason(ctx context.Context, id string) (string, error)
	// LiveRunners lists the children not finished, for the orphan sweep.
	LiveRunners(ctx context.Context) ([]nomad.LiveRunner, error)
}

// Packages tells which runner archive a platform's runners download.
type Packages interface {
	For(ctx context.Context, plat config.Platform) (runnerpkg.Package, error)
}

var (
	_ Packages = (*runnerpkg.Cache)(nil)
	_ GitHub   = (*github.Client)(nil)
	_ Nomad    = (*nomad.Client)(nil)
	_ Reporter = (*report.Reporter)(nil)
)

// Options configure a Fleet.
type Options struct {
	Config config.Config
	Store  *store.Store
	GitHub GitHub
	Nomad  Nomad
	// Reporter queues the results for GitHub; nil posts statuses directly.
	Reporter Reporter
	// Packages gives each runner its archive's URL and SHA-256 (dispatch
	// meta); nil gives none (the pool's command brings its runner).
	Packages Packages
	// ActRunner gives the runners of pools that run github-act-runner
	// their archive (act_runner); nil when no pool does.
	ActRunner *actrunner.Packages
	Logger    *slog.Logger
	// RetryEvery is how often pending deliveries (full pools, failed
	// steps) are retried (default 5s).
	RetryEvery time.Duration
	// WaitingAfter is how long a runner may wait for a host before the
	// job's status says "waiting for a host: <Nomad's reason>" (default 2m).
	WaitingAfter time.Duration
	// OrphansEvery is how often runner registrations and Nomad children
	// that no attempt accounts for are removed (default 1m; also at start).
	OrphansEvery time.Duration
	// QueuedAfter is how long a builder may wait for a host before its
	// result says "queued: waiting for a host in <pool>, N ahead" (default
	// 15s; a builder placed sooner costs no queued write). A builder that
	// max_runners holds back says so at once.
	QueuedAfter time.Duration
	// Registerer collects the fleet's histograms; nil registers none.
	Registerer prometheus.Registerer
	// Health is told of the hosts' infrastructure failures and successes
	// (see the notify package); nil tells nobody.
	Health HostHealth
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ScaleSets is the demand source of pools with source "scaleset"
	// (nil when no pool has it).
	ScaleSets ScaleSets
	// Jobs lists a run's jobs for reconciliation (nil: none).
	Jobs JobLister
	// ReconcileEvery is how long after the last webhook of a run in
	// flight its jobs are compared with GitHub's (default 1m; doubling
	// while nothing changes). See reconciler.
	ReconcileEvery time.Duration
	// TakeWithin bounds how long a running runner may leave its queued
	// job untaken before it is replaced (default 3m).
	TakeWithin time.Duration
	// Pools keeps the pool jobs and registers them again when Nomad lost
	// them (nil: not done).
	Pools PoolKeeper
	// ExpectWrites, when set, is told how many builders max_runners holds
	// back, each to need a JIT config (GitHub's write budget keeps room
	// for them, see github.Budget.Expect).
	ExpectWrites func(n int)
}

// Fleet is the runner loop.
type Fleet struct {
	cfg   config.Config
	st    *store.Store
	gh    GitHub
	nm    Nomad
	rep   Reporter
	hh    HostHealth
	m     metrics
	sets  ScaleSets
	pkgs  Packages
	act   *actrunner.Packages
	log   *slog.Logger
	retry time.Duration
	now   func() time.Time
	wake  chan struct{}
	// starts are the runner starts in flight (see starts.go).
	starts *starts

	// admit serialises counting a pool's runners and recording a new one,
	// so parallel starts never exceed max_runners.
	admit sync.Mutex

	waitingAfter time.Duration
	queuedAfter  time.Duration
	orphansEvery time.Duration
	// held are the jobs max_runners keeps back (see waiting.go).
	heldMu sync.Mutex
	held   map[int64]held
	// waiting counts the jobs whose first queued delivery a pass found
	// but could not start (no start slot free), not held: each will need
	// a JIT config too (see expectLocked).
	waiting int
	expect  func(n int) // Options.ExpectWrites
	index   uint64      // highest Nomad index handled
	// changed is set when runners changed since the last orphan sweep.
	changed bool

	jobs           JobLister
	rec            reconciler
	reconcileEvery time.Duration
	takeWithin     time.Duration
	pools          PoolKeeper
	// killAsked is when a failed job's runner was first asked about, while
	// its task has not ended (see killed).
	killMu    sync.Mutex
	killAsked map[int64]time.Time
	// slotFreed makes the next pass try the held jobs again: a full pool
	// is not retried on every webhook, only when a slot frees (or on the
	// tick), so a backlog costs no hot loop.
	slotFreed atomic.Bool
}

// New builds a Fleet.
func New(o Options) *Fleet {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RetryEvery <= 0 {
		o.RetryEvery = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	} else if o.Store != nil {
		// The store stamps rows with the same clock the fleet compares
		// them with (waiting for a host, wait timeouts).
		o.Store.SetClock(o.Now)
	}
	if o.WaitingAfter <= 0 {
		o.WaitingAfter = 2 * time.Minute
	}
	if o.QueuedAfter <= 0 {
		o.QueuedAfter = 15 * time.Second
	}
	if o.OrphansEvery <= 0 {
		o.OrphansEvery = time.Minute
	}
	if o.ReconcileEvery <= 0 {
		o.ReconcileEvery = time.Minute
	}
	if o.TakeWithin <= 0 {
		o.TakeWithin = 3 * time.Minute
	}
	return &Fleet{cfg: o.Config, st: o.Store, gh: o.GitHub, nm: o.Nomad, rep: o.Reporter, pkgs: o.Packages, act: o.ActRunner, hh: o.Health, m: newMetrics(o.Registerer, o.Config.Pools), sets: o.ScaleSets, log: o.Logger,
		retry: o.RetryEvery, now: o.Now, wake: make(chan struct{}, 1), starts: newStarts(),
		waitingAfter: o.WaitingAfter, queuedAfter: o.QueuedAfter, orphansEvery: o.OrphansEvery,
		jobs: o.Jobs, rec: reconciler{runs: map[int64]*runCheck{}}, reconcileEvery: o.ReconcileEvery,
		takeWithin: o.TakeWithin, pools: o.Pools, expect: o.ExpectWrites}
}

// Wake asks the loop to look at the store now (new deliveries).
func (f *Fleet) Wake() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Run handles workflow_job and workflow_run deliveries and follows Nomad
// until ctx ends: deliveries at start (what a crash left), on Wake and
// every RetryEvery; Nomad's runner updates as they come (from the index
// handled before a restart); orphans at start and every OrphansEvery.
func (f *Fleet) Run(ctx context.Context) {
	defer f.waitStarts()
	f.rec.mu.Lock()
	f.rec.startedAt = f.now()
	f.rec.mu.Unlock()
	retry := time.NewTicker(f.retry)
	defer retry.Stop()
	orphans := time.NewTicker(f.orphansEvery)
	defer orphans.Stop()
	f.index = f.watchFrom(ctx)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	updates := f.nm.Watch(wctx, f.index)
	if open, err := f.st.RunnersInState(ctx, activeStates...); err != nil || len(open) > 0 {
		f.changed = true // a crash may have left registrations or children
	}
	f.orphans(ctx)
	f.keepPools(ctx)
	f.pass(ctx)
	f.reconcile(ctx) // every run in flight: what a restart may have missed
	for {
		f.pass(ctx)
		f.sweep(ctx)
	wait:
		select {
		case <-ctx.Done():
			return
		case u, ok := <-updates:
			if !ok {
				updates = nil // ctx ended
			} else {
				f.follow(ctx, u)
			}
			goto wait
		case <-f.wake:
		case <-retry.C:
			f.slotFreed.Store(true) // held jobs' wait_timeout is checked on the tick
			f.reconcile(ctx)
		case <-orphans.C:
			f.orphans(ctx)
			f.keepPools(ctx)
		}
	}
}

// errPending leaves a delivery unprocessed, to be handled again on a later
// pass (a full pool, a failed step): the retry package's one marker, so the
// trigger and the fleet mean the same by "later".
var errPending = retry.ErrLater

// pass handles the unprocessed workflow_job and workflow_run deliveries,
// oldest first (a cancelled run stops its pending runners).
func (f *Fleet) pass(ctx context.Context) {
	retryHeld := f.slotFreed.Swap(false)
	ds, err := f.st.Unprocessed(ctx, 200, "workflow_job", "workflow_run")
	if err != nil {
		f.log.Error("listing deliveries", "err", err)
		return
	}
	// The first queued event of each job starts its runner at once, in
	// parallel: a request's builders should not wait for each other's
	// GitHub and Nomad round trips. Everything else follows in the order
	// received, after them, so a job's own events stay in order.
	var first, rest []store.Delivery
	type ids struct{ job, run int64 }
	of := map[string]ids{}
	seen := map[int64]bool{}
	for _, d := range ds {
		var id ids
		queued := false
		switch d.Event {
		case "workflow_job":
			if e, err := parseJob(d.Payload); err == nil {
				id = ids{e.WorkflowJob.ID, e.WorkflowJob.RunID}
				queued = e.Action == "queued"
			}
		case "workflow_run":
			var e runEvent
			if json.Unmarshal(d.Payload, &e) == nil {
				id.run = e.WorkflowRun.ID
			}
		}
		of[d.ID] = id
		if queued && !seen[id.job] {
			seen[id.job] = true
			if f.starts.busy(d.ID, id.job, 0) || (!retryHeld && f.isHeld(id.job)) {
				continue // started already, or its pool was full and no slot freed since
			}
			first = append(first, d)
			continue
		}
		rest = append(rest, d)
	}
	// Starts go on in their own goroutines: one waiting on GitHub's write
	// budget holds back nothing else (see starts).
	started := 0
	for _, d := range first {
		if ctx.Err() != nil || !f.goStart(ctx, d, of[d.ID].job, of[d.ID].run) {
			break // no room: a later pass, woken when a start ends
		}
		started++
	}
	left := make([]int64, 0, len(first)-started)
	for _, d := range first[started:] {
		left = append(left, of[d.ID].job)
	}
	f.setWaiting(left)
	for _, d := range rest {
		if id := of[d.ID]; f.starts.busy(d.ID, id.job, 0) || (d.Event == "workflow_run" && f.starts.busy("", 0, id.run)) {
			continue // after its job's (or run's) start in flight
		}
		if ctx.Err() != nil || !f.handle(ctx, d) {
			return
		}
	}
}

// maxParallelStarts bounds the runner starts in flight at once.
const maxParallelStarts = 8

// handle handles one delivery and marks it processed unless it must wait.
// It reports false when the store failed, which ends the pass.
func (f *Fleet) handle(ctx context.Context, d store.Delivery) bool {
	var herr error
	switch d.Event {
	case "workflow_job":
		herr = f.HandleJob(ctx, d)
	case "workflow_run":
		herr = f.HandleRun(ctx, d)
	}
	if errors.Is(herr, errPending) {
		return true
	}
	if herr != nil {
		f.log.Warn("delivery not handled", "delivery", d.ID, "event", d.Event, "err", herr)
	}
	if err := f.st.MarkProcessed(ctx, d.ID, f.now(), herr); err != nil {
		f.log.Error("marking delivery", "delivery", d.ID, "err", err)
		return false
	}
	return true
}
