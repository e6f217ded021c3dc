// Package trigger turns label events into workflow runs: exactly one run per
// request, pinned to the SHA the PR had when the label was added.
//
// A request moves through these states; each step is written to the store
// before and after it takes effect, so that a restart resumes where it
// stopped and never repeats a step that already happened:
//
//	checking ──role < min_role──▶ refusing ──label removed, comment──▶ refused
//	   │
//	   └──role ok──▶ accepted ──label removed──▶ PR closed? ──▶ skipped
//	                    │
//	                    ├─ supersede a queued run of the same PR and tier
//	                    ├─ comment "scheduled" (found again by its marker after a crash)
//	                    └─ dispatch (found again by request id in run-name after a crash)
//	                          ├─ run id known ──▶ dispatched
//	                          ├─ 204, run id unknown ──▶ locating ──found──▶ dispatched
//	                          └─ refused by GitHub (4xx) ──▶ failed
//	dispatched ──run completed──▶ done
package trigger

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/lifecycle"
	"github.com/buildfleet/buildfleet/manager/retry"
	"github.com/buildfleet/buildfleet/manager/store"
)

// Request states: the lifecycle package's, named here for the trigger's
// readers. Moves between them go through the store's compare-and-set.
const (
	StateChecking   = lifecycle.Checking
	StateRefusing   = lifecycle.Refusing
	StateRefused    = lifecycle.Refused
	StateAccepted   = lifecycle.Accepted
	StateSkipped    = lifecycle.Skipped
	StateLocating   = lifecycle.Locating
	StateDispatched = lifecycle.Dispatched
	StateFailed     = lifecycle.Failed
	StateSuperseded = lifecycle.Superseded
	// StateDone: the run completed (any conclusion); the fleet tells the
	// trigger (RunCompleted) on workflow_run.completed, or the trigger finds
	// the run completed. Results are the reporter's business.
	StateDone = lifecycle.Done
)

// Options configure a Trigger.
type Options struct {
	Config config.Config
	Store  *store.Store
	GitHub GitHub
	Logger *slog.Logger
	// Registerer receives the trigger metrics; nil means none.
	Registerer prometheus.Registerer
	// RoleTTL is how long a looked-up role is trusted (default 1m).
	RoleTTL time.Duration
	// RetryEvery is how often failed steps and open requests are retried
	// (default 5s).
	RetryEvery time.Duration
	// RecoverEvery is how often open PRs still carrying a trigger label are
	// looked for (default 5m; negative disables).
	RecoverEvery time.Duration
	// RecoverMinAge is how old a label must be before the scan handles it
	// (default 2m): a younger label is left to its webhook, which is
	// likely on its way. Tests and the proof suite shorten it so that a
	// dropped labeled webhook is recovered within seconds.
	RecoverMinAge time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ResumeGrace is how long after an unanswered comment or dispatch
	// attempt the trigger waits before looking whether it took effect and
	// trying again (default: github.AttemptTimeout + 2s). GitHub may still
	// act on a request whose answer never came; looking too early would
	// post or dispatch twice.
	ResumeGrace time.Duration
	// OnDispatched, when set, is called once a request's run id is stored:
	// the fleet waits for it before starting runners for the run's jobs,
	// whose queued webhooks often come first.
	OnDispatched func()
	// ExpectWrites, when set, is told after each pass how many unblocking
	// writes the open requests not yet dispatched will make (label
	// removals, dispatches, refusals and a JIT config per builder):
	// GitHub's write budget keeps room for them, so that in a burst the
	// reports of the first builds do not take the hour's room the last
	// ones need to start.
	ExpectWrites func(n int)
}

// Trigger handles pull_request deliveries and operator requests.
type Trigger struct {
	cfg     config.Config
	st      *store.Store
	gh      GitHub
	log     *slog.Logger
	now     func() time.Time
	roleTTL time.Duration
	retry   time.Duration
	recov   time.Duration
	minAge  time.Duration // see Options.RecoverMinAge
	wake    chan struct{}
	rescan  chan bool // see RecoverSoon
	onDisp  func()
	grace   time.Duration
	expect  func(n int) // Options.ExpectWrites
	// opened is what the open requests will write, as last told to
	// expect, and openIDs their ids (the pass's goroutine only).
	opened  int
	openIDs map[string]bool

	mu       sync.Mutex
	roles    map[string]cachedRole
	branches map[string]string

	requests *prometheus.CounterVec
}

type cachedRole struct {
	role    string
	expires time.Time
}

// New builds a Trigger.
func New(o Options) *Trigger {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	} else if o.Store != nil {
		// The store stamps rows with the same clock the trigger compares
		// them with (settling, lateWebhook).
		o.Store.SetClock(o.Now)
	}
	if o.RoleTTL == 0 {
		o.RoleTTL = time.Minute
	}
	if o.RetryEvery == 0 {
		o.RetryEvery = 5 * time.Second
	}
	if o.ResumeGrace == 0 {
		o.ResumeGrace = github.AttemptTimeout + 2*time.Second
	}
	if o.RecoverEvery == 0 {
		o.RecoverEvery = 5 * time.Minute
	}
	if o.RecoverMinAge <= 0 {
		o.RecoverMinAge = defaultRecoverMinAge
	}
	reg := o.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &Trigger{
		cfg: o.Config, st: o.Store, gh: o.GitHub, log: o.Logger, now: o.Now,
		roleTTL: o.RoleTTL, retry: o.RetryEvery, recov: o.RecoverEvery,
		minAge:   o.RecoverMinAge,
		wake:     make(chan struct{}, 1),
		rescan:   make(chan bool, 1),
		onDisp:   o.OnDispatched,
		expect:   o.ExpectWrites,
		grace:    o.ResumeGrace,
		roles:    map[string]cachedRole{},
		branches: map[string]string{},
		requests: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "buildfleet_requests_total",
			Help: "Build requests by final trigger outcome (dispatched, refused, skipped, failed, superseded).",
		}, []string{"outcome"}),
	}
}

// Wake asks the loop to look at the store now (new deliveries).
func (t *Trigger) Wake() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Run handles stored deliveries and open requests until ctx ends: at start
// (what a crash left), on Wake, and every RetryEvery; and looks for lost
// label events at start, every RecoverEvery, and on RecoverSoon (also when
// RecoverEvery disables the periodic scan).
func (t *Trigger) Run(ctx context.Context) {
	retry := time.NewTicker(t.retry)
	defer retry.Stop()
	var recoverC <-chan time.Time
	if t.recov > 0 {
		rt := time.NewTicker(t.recov)
		defer rt.Stop()
		recoverC = rt.C
		// After a restart: the labels whose webhooks came while the
		// manager was down, and once more when the youngest of them is
		// old enough for the scan.
		t.recoverAfterOutage(ctx, true)
	}
	for {
		t.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
		case <-retry.C:
		case <-recoverC:
			t.Recover(ctx)
		case again := <-t.rescan:
			t.recoverAfterOutage(ctx, again)
		}
	}
}

// pass handles every unprocessed pull_request delivery, then advances open
// requests. workflow_job and workflow_run deliveries belong to the fleet
// loop, which marks them itself; the trigger never reads them.
func (t *Trigger) pass(ctx context.Context) {
	for ctx.Err() == nil {
		ds, err := t.st.Unprocessed(ctx, 100, "pull_request")
		if err != nil {
			t.log.Error("listing deliveries", "err", err)
			return
		}
		t.expectDeliveries(ds)
		progressed := false
		for _, d := range ds {
			err := t.HandleDelivery(ctx, d)
			if retry.IsLater(err) {
				t.log.Log(ctx, retryLevel(err), "delivery handling will be retried", "delivery", d.ID, "err", err)
				continue
			}
			if err != nil {
				t.log.Warn("delivery not handled", "delivery", d.ID, "event", d.Event, "err", err)
			}
			if merr := t.st.MarkProcessed(ctx, d.ID, t.now(), err); merr != nil {
				t.log.Error("marking delivery", "delivery", d.ID, "err", merr)
				return
			}
			progressed = true
		}
		if len(ds) < 100 || !progressed {
			break
		}
	}
	open, err := t.st.OpenRequests(ctx)
	if err != nil {
		t.log.Error("listing open requests", "err", err)
		return
	}
	t.expectWrites(open)
	advanced := false
	for _, r := range open {
		if r.State == StateDispatched {
			continue
		}
		advanced = true
		if err := t.advance(ctx, r); err != nil {
			t.log.Log(ctx, retryLevel(err), "request step will be retried", "request", r.ID, "state", r.State, "err", err)
		}
	}
	if advanced && t.expect != nil {
		if open, err = t.st.OpenRequests(ctx); err == nil {
			t.expectWrites(open)
		}
	}
}

// expectWrites tells GitHub's write budget (Options.ExpectWrites) what
// the open requests will still write before their builds run.
func (t *Trigger) expectWrites(open []store.Request) {
	if t.expect == nil {
		return
	}
	n := 0
	t.openIDs = make(map[string]bool, len(open))
	for _, r := range open {
		n += t.writesAhead(r)
		t.openIDs[r.ID] = true
	}
	t.opened = n
	t.expect(n)
}

// expectDeliveries adds, before the pass handles them, what the requests
// of labeled deliveries not handled yet will write: a burst's labels
// arrive before any of their requests exist, and the first reports must
// not take the room they need. A delivery whose request is open (its
// handling waits on a step of it) is counted with the request.
func (t *Trigger) expectDeliveries(ds []store.Delivery) {
	if t.expect == nil || len(ds) == 0 {
		return
	}
	n := t.opened
	for _, d := range ds {
		if e, _, trig, _ := t.labelTrigger(d); trig != nil && !t.openIDs[requestID(d.ID, e.Label.Name)] {
			n += t.writesAhead(store.Request{Label: trig.Label, Tier: trig.Tier, State: StateChecking})
		}
	}
	t.expect(n)
}

// writesAhead counts the unblocking writes an open request will make
// before its builders run: the label's removal, the refusal comment or
// the dispatch, and a JIT config per builder of its tier (the fleet counts
// those once it knows the run's jobs: a dispatched request counts none).
// A request that may yet be refused, coalesced or skipped counts as
// accepted: keeping room a little too long only delays a report.
func (t *Trigger) writesAhead(r store.Request) int {
	n := 0
	if !r.LabelRemoved && r.Label != "" {
		n++
	}
	switch {
	case r.State == StateRefusing:
		n++
	case r.RunID != 0:
	case r.State == StateChecking || r.State == StateAccepted || r.State == StateLocating:
		if r.State != StateLocating {
			n++
		}
		n += len(t.cfg.StablePools(r.Tier))
	}
	return n
}

// errSettling is a step that waits for an earlier attempt GitHub did not
// answer (or answered 5xx) to take effect, before looking again.
var errSettling = errors.New("an earlier attempt may still take effect")

// retryLevel is the level of a step to be retried: a comment waiting for
// GitHub's write budget in a burst is the budget at work, not a warning,
// and a step waiting for an earlier attempt to settle says so at every
// pass (the attempt's own failure was the warning).
func retryLevel(err error) slog.Level {
	if errors.Is(err, github.ErrBudgetBusy) || errors.Is(err, errSettling) {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// HandleDelivery handles one stored delivery. Only pull_request.labeled
// with a configured trigger label on a configured repository does anything.
// A nil or permanent error means the delivery is done; a transient error
// means try again later.
func (t *Trigger) HandleDelivery(ctx context.Context, d store.Delivery) error {
	e, repo, trig, err := t.labelTrigger(d)
	if err != nil || trig == nil {
		return err
	}
	if e.Repository.DefaultBranch != "" {
		t.mu.Lock()
		t.branches[strings.ToLower(repo.Name)] = e.Repository.DefaultBranch
		t.mu.Unlock()
	}
	r := store.Request{
		ID:         requestID(d.ID, e.Label.Name),
		DeliveryID: d.ID,
		Repo:       repo.Name,
		PR:         e.PullRequest.Number,
		SHA:        e.PullRequest.Head.SHA,
		Tier:       trig.Tier,
		Label:      trig.Label,
		Actor:      e.Sender.Login,
		State:      StateChecking,
		CreatedAt:  d.ReceivedAt,
	}
	if e.PullRequest.State != "open" {
		// Still checked and unlabelled like any request, then skipped.
		r.Reason = "closed"
	}
	if dup, err := t.recovered(ctx, r); err != nil {
		return retry.Later(err)
	} else if dup {
		t.log.Info("label event already recovered by the scan; not built again", "repo", r.Repo, "pr", r.PR, "delivery", d.ID)
		return nil
	}
	stored, fresh, err := t.st.CreateRequest(ctx, r)
	if err != nil {
		return retry.Later(err)
	}
	if fresh {
		t.log.Info("build requested", "request", stored.ID, "repo", stored.Repo, "pr", stored.PR,
			"sha", stored.SHA, "tier", stored.Tier, "actor", stored.Actor, "delivery", d.ID)
	}
	return t.advance(ctx, stored)
}

// recovered reports whether the lost-label scan already made a request for
// this label event: same PR, label and SHA, recovered within lateWebhook.
// A webhook that comes that late (or is redelivered by hand) must not build
// the PR a second time.
func (t *Trigger) recovered(ctx context.Context, r store.Request) (bool, error) {
	prev, err := t.st.PreviousRequests(ctx, store.Request{Repo: r.Repo, PR: r.PR, Tier: r.Tier, CreatedAt: t.now()})
	if err != nil {
		return false, err
	}
	for _, p := range prev {
		if p.DeliveryID != "recovered" || p.Label != r.Label || p.SHA != r.SHA || t.now().Sub(p.CreatedAt) >= lateWebhook {
			continue
		}
		// Someone may have added the label again since: then it is a new
		// request. Asked only in this rare case.
		owner, name := splitRepo(r.Repo)
		_, at, err := t.gh.LastLabeler(ctx, owner, name, r.PR, r.Label)
		if err != nil {
			return false, fmt.Errorf("finding who labeled #%d last: %w", r.PR, err)
		}
		return !at.After(p.CreatedAt), nil
	}
	return false, nil
}

// lateWebhook is how late a labeled webhook may come after the scan
// recovered its label event and still be recognised as the same event.
const lateWebhook = 30 * time.Minute

// labelTrigger parses a delivery and returns it with the configured
// repository and trigger it names; trig is nil (and err too) when it
// triggers nothing: another event or action, another label or repository.
func (t *Trigger) labelTrigger(d store.Delivery) (e pullRequestEvent, repo *config.Repository, trig *config.Trigger, err error) {
	if d.Event != "pull_request" {
		return e, nil, nil, nil
	}
	if e, err = parsePullRequest(d.Payload); err != nil || e.Action != "labeled" {
		return e, nil, nil, err
	}
	if repo = t.cfg.Repository(e.Repository.FullName); repo == nil {
		t.log.Debug("label on an unconfigured repository ignored", "repo", e.Repository.FullName)
		return e, nil, nil, nil
	}
	return e, repo, repo.Trigger(e.Label.Name), nil
}

// requestID derives a request's ID from its delivery, so that a replayed
// delivery finds the request it created before.
func requestID(deliveryID, label string) string {
	h := sha256.Sum256([]byte(deliveryID + "\x00" + label))
	return hex.EncodeToString(h[:8])
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// settling reports whether an earlier unanswered attempt, recorded at the
// request's last update, may still take effect at GitHub.
func (t *Trigger) settling(r *store.Request) error {
	if wait := t.grace - t.now().Sub(r.UpdatedAt); wait > 0 {
		return retry.Later(fmt.Errorf("request %s: %w; looking again in %s", r.ID, errSettling, wait.Round(time.Second)))
	}
	return nil
}

func splitRepo(name string) (string, string) {
	o, r, _ := strings.Cut(name, "/")
	return o, r
}
