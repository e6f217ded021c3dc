package fleet

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/report"
	"github.com/buildfleet/buildfleet/manager/store"
)

// reportGitHub records what the report queue writes.
type reportGitHub struct {
	mu       sync.Mutex
	statuses []string // "context state description"
	comments []string
}

func (g *reportGitHub) CreateStatus(_ context.Context, _, _, _, state, _, desc, ctxName string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.statuses = append(g.statuses, ctxName+" "+state+" "+desc)
	return nil
}

func (g *reportGitHub) LatestStatus(context.Context, string, string, string, string) (github.Status, error) {
	return github.Status{}, github.ErrNotFound // the waiting tests never restart
}

func (g *reportGitHub) CreateCheckRun(context.Context, string, string, github.CheckRun) (int64, error) {
	return 0, fmt.Errorf("no check runs with a token")
}

func (g *reportGitHub) UpdateCheckRun(context.Context, string, string, int64, github.CheckRun) error {
	return fmt.Errorf("no check runs with a token")
}

func (g *reportGitHub) FindCheckRun(context.Context, string, string, string, string, string) (int64, error) {
	return 0, github.ErrNotFound
}

func (g *reportGitHub) Comment(_ context.Context, _, _ string, _ int, body string) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.comments = append(g.comments, body)
	return int64(len(g.comments)), nil
}

func (g *reportGitHub) EditComment(context.Context, string, string, int64, string) error { return nil }

func (g *reportGitHub) FindComment(context.Context, string, string, int, string) (int64, error) {
	return 0, github.ErrNotFound
}

// waitFixture is a fleet with a real report queue on a real store, a pool
// of one runner and a clock the test moves.
type waitFixture struct {
	f   *Fleet
	st  *store.Store
	rep *report.Reporter
	gh  *reportGitHub
	nm  *fakeNomad
	now time.Time
}

func newWaitFixture(t *testing.T, waitTimeout time.Duration) *waitFixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := config.Config{
		Repositories: []config.Repository{{Name: "o/r", Report: config.ReportStatus, Comment: config.CommentOnFinish,
			ContextPrefix: "buildbot/"}},
		Pools: []config.Pool{{Name: "linux-quick", Labels: labels, MaxRunners: 1, WaitTimeout: config.Duration(waitTimeout)}},
	}
	w := &waitFixture{st: st, gh: &reportGitHub{}, nm: &fakeNomad{}, now: time.Now()}
	clock := func() time.Time { return w.now }
	w.rep = report.New(report.Options{Config: cfg, Store: st, GitHub: w.gh, Now: clock})
	w.f = New(Options{Config: cfg, Store: st, GitHub: &fakeGitHub{}, Nomad: w.nm, Reporter: w.rep, Now: clock,
		WaitingAfter: time.Minute, QueuedAfter: 10 * time.Second})
	// Two requests of two PRs, one builder each, in the same pool.
	for i, id := range []string{"r1", "r2"} {
		if _, _, err := st.CreateRequest(ctx, store.Request{ID: id, Repo: "o/r", PR: 1 + i, SHA: "pr-head-" + id,
			Tier: "quick", State: "dispatched", Builders: `[{"name":"linux-quick","labels":["` + bindingLabel + `"]}]`}); err != nil {
			t.Fatal(err)
		}
		run, tries := int64(7+i), 1
		if err := st.UpdateRequest(ctx, id, store.RequestFields{RunID: &run, DispatchTries: &tries}); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// written drains the queue and returns the statuses written since the
// last call.
func (w *waitFixture) written(t *testing.T) []string {
	t.Helper()
	w.gh.mu.Lock()
	before := len(w.gh.statuses)
	w.gh.mu.Unlock()
	if err := w.rep.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.gh.mu.Lock()
	defer w.gh.mu.Unlock()
	return append([]string(nil), w.gh.statuses[before:]...)
}

// TestHeldBuilderGetsQueuedResultAfterQueuedAfter: a builder that
// max_runners keeps back says nothing while a slot may free moments later
// (a queued result then would be a write replaced at once); once it has
// waited QueuedAfter it has a pending result with its reason, written
// once however often the pool is looked at. The builder that got the
// slot says nothing until it has waited QueuedAfter either.
func TestHeldBuilderGetsQueuedResultAfterQueuedAfter(t *testing.T) {
	ctx := context.Background()
	w := newWaitFixture(t, time.Hour)
	if err := w.f.HandleJob(ctx, delivery("d1", "queued", 100, 7, "")); err != nil {
		t.Fatal(err)
	}
	if err := w.f.HandleJob(ctx, delivery("d2", "queued", 101, 8, "")); err == nil {
		t.Fatal("the second job of a pool of one started")
	}
	if got := w.written(t); len(got) != 0 {
		t.Fatalf("written %q before QueuedAfter, want nothing", got)
	}
	q, err := w.f.Queue(ctx)
	if err != nil || len(q) != 2 || q[0].JobID != 100 || q[0].State != StateDispatched ||
		q[1].JobID != 101 || q[1].State != "held" || !strings.Contains(q[1].Reason, "is full") {
		t.Fatalf("queue %+v, %v", q, err)
	}
	// Both have waited longer than QueuedAfter.
	w.now = w.now.Add(11 * time.Second)
	for range 3 {
		if err := w.f.HandleJob(ctx, delivery("d2", "queued", 101, 8, "")); err == nil {
			t.Fatal("the second job of a pool of one started")
		}
	}
	want := []string{"buildbot/linux-quick pending queued: linux-quick is full (1 of 1 runners busy), 0 ahead"}
	if got := w.written(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("written %q, want %q", got, want)
	}
	w.f.sweep(ctx)
	w.f.sweep(ctx)
	want = []string{"buildbot/linux-quick pending queued: waiting for a host in linux-quick, 0 ahead"}
	if got := w.written(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("written %q, want %q", got, want)
	}
}

// TestRequestEndsAfterWaitTimeout: with a wait_timeout of an hour, a
// builder held by max_runners and a builder Nomad cannot place (two
// requests, one builder each) both end
// as fleet errors naming their last reason, the blocked child is
// released, and the summary comment comes.
func TestRequestEndsAfterWaitTimeout(t *testing.T) {
	ctx := context.Background()
	w := newWaitFixture(t, time.Hour)
	if err := w.f.HandleJob(ctx, delivery("d1", "queued", 100, 7, "")); err != nil {
		t.Fatal(err)
	}
	_ = w.f.HandleJob(ctx, delivery("d2", "queued", 101, 8, ""))
	w.f.follow(ctx, update("bf-linux-quick-100-1", nomad.StateBlocked, "no eligible host: 1 node ineligible", 5))
	w.written(t)

	w.now = w.now.Add(59 * time.Minute)
	w.f.sweep(ctx)
	if err := w.f.HandleJob(ctx, delivery("d2", "queued", 101, 8, "")); err == nil {
		t.Fatal("held job ended before its wait_timeout")
	}
	if len(w.gh.comments) != 0 {
		t.Fatalf("summary before the timeout: %q", w.gh.comments)
	}
	w.written(t)

	w.now = w.now.Add(2 * time.Minute)
	if err := w.f.HandleJob(ctx, delivery("d2", "queued", 101, 8, "")); err != nil {
		t.Fatalf("held job after its wait_timeout: %v", err)
	}
	w.f.sweep(ctx)
	got := w.written(t)
	want := []string{
		"buildbot/linux-quick error fleet error, not this PR: no host within 1h0m0s: linux-quick is full (1 of 1 runners busy)",
		"buildbot/linux-quick error fleet error, not this PR: no host within 1h0m0s: no eligible host: 1 node ineligible",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("written %q, want %q", got, want)
	}
	if len(w.nm.stopped) != 1 || w.nm.stopped[0] != "child-1" {
		t.Errorf("stopped %v, want the blocked child released", w.nm.stopped)
	}
	if len(w.gh.comments) != 2 || !strings.Contains(w.gh.comments[1], "1 fleet error(s)") ||
		!strings.Contains(w.gh.comments[0], "no host within 1h0m0s: linux-quick is full") {
		t.Errorf("summary comments %q, want one per request with its fleet error", w.gh.comments)
	}
	for _, id := range []int64{100, 101} {
		r, err := w.st.LatestRunner(ctx, id)
		if err != nil || r.State != StateGaveUp || r.Reported != "error" {
			t.Errorf("job %d: %+v %v", id, r, err)
		}
	}
	if q, _ := w.f.Queue(ctx); len(q) != 0 {
		t.Errorf("queue after the timeout: %+v", q)
	}
	// A replay of the queued events starts nothing.
	if err := w.f.HandleJob(ctx, delivery("d2", "queued", 101, 8, "")); err != nil || len(w.nm.dispatched) != 1 {
		t.Errorf("replay: %v, dispatched %d", err, len(w.nm.dispatched))
	}
}

// fakeHealth records what the fleet says of hosts.
type fakeHealth struct{ events []string }

func (h *fakeHealth) RecordFailure(_ context.Context, host, runner, kind, _ string) {
	h.events = append(h.events, "failure "+host+" "+runner+" "+kind)
}
func (h *fakeHealth) RecordSuccess(_ context.Context, host string) {
	h.events = append(h.events, "success "+host)
}

// fakeNamer names nodes for the fleet.
type fakeNamer struct{ *fakeNomad }

func (fakeNamer) NodeName(_ context.Context, id string) (string, error) { return "host-" + id, nil }

// TestHostFailuresReported: a runner placed on a host that fails before
// taking its job, or is lost, is the host's failure; a build that ran to
// its end is its success.
func TestHostFailuresReported(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hh, nm := &fakeHealth{}, &fakeNomad{}
	f := New(Options{Config: config.Config{Pools: []config.Pool{{Name: "linux-quick", Labels: labels, MaxRunners: 4}}},
		Store: st, GitHub: &fakeGitHub{}, Nomad: fakeNamer{nm}, Health: hh})
	ourRequest(t, st, "dispatched", 7)
	if err := f.HandleJob(ctx, delivery("d1", "queued", 100, 7, "")); err != nil {
		t.Fatal(err)
	}
	placed := func(name, node string, s nomad.State, idx uint64) {
		u := update(name, s, "", idx)
		u.NodeID = node
		f.follow(ctx, u)
	}
	placed("bf-linux-quick-100-1", "n1", nomad.StatePlaced, 2)
	placed("bf-linux-quick-100-1", "n1", nomad.StateFailed, 3) // never started: attempt 2
	placed("bf-linux-quick-100-2", "n2", nomad.StateRunning, 4)
	placed("bf-linux-quick-100-2", "n2", nomad.StateLost, 5) // attempt 3
	placed("bf-linux-quick-100-3", "n1", nomad.StateRunning, 6)
	if err := f.HandleJob(ctx, delivery("d2", "in_progress", 100, 7, `,"runner_name":"bf-linux-quick-100-3"`)); err != nil {
		t.Fatal(err)
	}
	if err := f.HandleJob(ctx, delivery("d3", "completed", 100, 7, `,"conclusion":"failure"`)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"failure host-n1 bf-linux-quick-100-1 never_started",
		"failure host-n2 bf-linux-quick-100-2 lost",
		"success host-n1",
	}
	if fmt.Sprint(hh.events) != fmt.Sprint(want) {
		t.Errorf("events %q, want %q", hh.events, want)
	}
	tm, err := st.RunnerTimes(ctx, 100, 3)
	if err != nil || tm.NodeName != "host-n1" || tm.PlacedAt.IsZero() || tm.RunningAt.IsZero() || tm.StartedAt.IsZero() ||
		tm.FinishedAt.IsZero() {
		t.Errorf("times of the attempt that ran: %+v %v", tm, err)
	}
	// A build whose host Nomad never named (its placement not seen) is
	// no host's success: no mark under the runner's name.
	hh.events = nil
	for _, d := range []store.Delivery{delivery("d4", "queued", 200, 7, ""),
		delivery("d5", "in_progress", 200, 7, `,"runner_name":"bf-linux-quick-200-1"`),
		delivery("d6", "completed", 200, 7, `,"conclusion":"success"`)} {
		if err := f.HandleJob(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if len(hh.events) != 0 {
		t.Errorf("events %q for a build on no known host, want none", hh.events)
	}
}

// TestHeldRetryEndsAfterWaitTimeout: a job whose first runner failed and
// whose next attempt the full pool holds back still ends after the pool's
// wait_timeout, as its next attempt.
func TestHeldRetryEndsAfterWaitTimeout(t *testing.T) {
	ctx := context.Background()
	w := newWaitFixture(t, time.Hour)
	if err := w.f.HandleJob(ctx, delivery("d1", "queued", 100, 7, "")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.CreateRunner(ctx, store.Runner{GitHubJobID: 101, Attempt: 1, RunID: 8, RequestID: "r2", Repo: "o/r",
		Pool: "linux-quick", RunnerName: runnerName("linux-quick", 101, 1), State: StateFailed}); err != nil {
		t.Fatal(err)
	}
	if err := w.f.HandleJob(ctx, delivery("d2", "queued", 101, 8, "")); err == nil {
		t.Fatal("started in a full pool")
	}
	w.now = w.now.Add(61 * time.Minute)
	if err := w.f.HandleJob(ctx, delivery("d2", "queued", 101, 8, "")); err != nil {
		t.Fatal(err)
	}
	r, err := w.st.LatestRunner(ctx, 101)
	if err != nil || r.Attempt != 2 || r.State != StateGaveUp || r.Reported != "error" {
		t.Errorf("job 101: %+v %v; want attempt 2 given up and reported", r, err)
	}
}

// TestFleetTellsTheBudgetWhatItsBuildersNeed: with more queued jobs than
// start slots in a pool of one runner, the fleet tells GitHub's write
// budget a JIT config for every builder it knows of and has not started:
// those max_runners holds back and those left for a start slot.
func TestFleetTellsTheBudgetWhatItsBuildersNeed(t *testing.T) {
	ctx := context.Background()
	w := newWaitFixture(t, time.Hour)
	var mu sync.Mutex
	told := -1
	w.f.expect = func(n int) { mu.Lock(); told = n; mu.Unlock() }
	const jobs = maxParallelStarts + 4
	for i := range jobs {
		run := int64(7 + i)
		if i >= 2 { // the fixture has the first two requests
			id := fmt.Sprintf("r%d", i+1)
			if _, _, err := w.st.CreateRequest(ctx, store.Request{ID: id, Repo: "o/r", PR: 1 + i, SHA: "pr-head-" + id,
				Tier: "quick", State: "dispatched", Builders: `[{"name":"linux-quick","labels":["` + bindingLabel + `"]}]`}); err != nil {
				t.Fatal(err)
			}
			tries := 1
			if err := w.st.UpdateRequest(ctx, id, store.RequestFields{RunID: &run, DispatchTries: &tries}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.st.PutDelivery(ctx, delivery(fmt.Sprintf("d%d", i), "queued", int64(100+i), run, "")); err != nil {
			t.Fatal(err)
		}
	}
	w.f.pass(ctx)
	w.f.waitStarts()
	mu.Lock()
	got := told
	mu.Unlock()
	// One started; of the starts in flight the others were held back;
	// the rest wait for a start slot.
	if want := jobs - 1; got != want {
		t.Fatalf("the budget was told %d JIT configs to come, want %d (%d held, %d waiting for a start slot)",
			got, want, maxParallelStarts-1, jobs-maxParallelStarts)
	}
	// A later pass takes the waiting ones (held now too): the count stays.
	w.f.pass(ctx)
	w.f.waitStarts()
	mu.Lock()
	got = told
	mu.Unlock()
	if want := jobs - 1; got != want {
		t.Errorf("after the second pass the budget was told %d, want %d", got, want)
	}
}
