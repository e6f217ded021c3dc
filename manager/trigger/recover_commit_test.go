package trigger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/internal/ghsim"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/retry"
	"github.com/buildfleet/buildfleet/manager/store"
)

// commentBodies returns the bodies of the PR's comments, from ghsim.
func (e *recoverEnv) commentBodies(t *testing.T) []string {
	t.Helper()
	var cs []struct {
		Body string `json:"body"`
	}
	e.getJSON(t, fmt.Sprintf("/repos/%s/issues/%d/comments", recRepo, e.pr), &cs)
	var out []string
	for _, c := range cs {
		out = append(out, c.Body)
	}
	return out
}

// labels returns the names of the PR's labels, from ghsim.
func (e *recoverEnv) labels(t *testing.T) []string {
	t.Helper()
	var ls []struct {
		Name string `json:"name"`
	}
	e.getJSON(t, fmt.Sprintf("/repos/%s/issues/%d/labels", recRepo, e.pr), &ls)
	var out []string
	for _, l := range ls {
		out = append(out, l.Name)
	}
	return out
}

func (e *recoverEnv) requests(t *testing.T) []store.Request {
	t.Helper()
	rs, err := e.st.ListRequests(context.Background(), 20)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestRecoverBuildsTheLabelledCommit: the labeled webhook is lost and the
// author pushes afterwards (its synchronize webhook arrives). The scan
// builds the commit the label was added on, once, however often it runs.
func TestRecoverBuildsTheLabelledCommit(t *testing.T) {
	ctx := context.Background()
	e := newRecoverEnv(t, 10*time.Second)
	e.clk.add(time.Minute)
	e.label(t, true)
	e.clk.add(10 * time.Second)
	pushed := strings.Repeat("b2", 20)
	e.push(t, pushed, false, false)
	e.clk.add(time.Minute)
	for range 3 {
		e.trig.Recover(ctx)
		e.trig.pass(ctx)
	}
	if got := e.dispatched(t); len(got) != 1 || got[0] != e.sha {
		t.Fatalf("dispatched %v, want one run at the labelled %s (not the push %s)", got, e.sha, pushed)
	}
	rs := e.requests(t)
	if len(rs) != 1 || rs[0].SHA != e.sha || rs[0].DeliveryID != "recovered" || rs[0].State != StateDispatched {
		t.Errorf("requests = %+v", rs)
	}
}

// TestRecoverUnknownCommitBuildsNothing: the labeled and the synchronize
// webhooks are both lost, so whether the label came before or after the
// push cannot be told. Nothing is built; one comment asks for the label
// again, however often the scan runs; the label is gone, so a new one is
// a fresh event.
func TestRecoverUnknownCommitBuildsNothing(t *testing.T) {
	ctx := context.Background()
	e := newRecoverEnv(t, 10*time.Second)
	e.clk.add(time.Minute)
	e.label(t, true)
	e.clk.add(10 * time.Second)
	e.push(t, strings.Repeat("b2", 20), false, true)
	e.clk.add(time.Minute)
	for range 3 {
		e.trig.Recover(ctx)
		e.trig.pass(ctx)
	}
	if got := e.dispatched(t); len(got) != 0 {
		t.Fatalf("dispatched %v, want nothing", got)
	}
	bodies := e.commentBodies(t)
	if len(bodies) != 1 || !strings.Contains(bodies[0], "add it again") || !strings.Contains(bodies[0], "@triager") {
		t.Fatalf("comments = %q, want one asking for the label again", bodies)
	}
	rs := e.requests(t)
	if len(rs) != 1 || rs[0].State != StateSkipped || !strings.HasPrefix(rs[0].Reason, reasonCommitUnknown) || rs[0].SHA != "" {
		t.Errorf("requests = %+v; want one skipped, its reason saying the commit is unknown", rs)
	}
	if got := e.labels(t); len(got) != 0 {
		t.Errorf("labels %v, want the trigger label removed", got)
	}

	// Labelled again: its webhook comes, and the current head is built.
	e.clk.add(time.Minute)
	e.label(t, false)
	e.trig.pass(ctx)
	if got := e.dispatched(t); len(got) != 1 || got[0] != strings.Repeat("b2", 20) {
		t.Errorf("after a new label: dispatched %v, want the current head; requests %+v", got, e.requests(t))
	}
}

// TestRecoverUnseenForcePushes: force-pushed away from the labelled commit
// and back, both webhooks lost. The stored webhooks look consistent, but
// GitHub's issue events record the force pushes: nothing is built.
func TestRecoverUnseenForcePushes(t *testing.T) {
	ctx := context.Background()
	e := newRecoverEnv(t, 10*time.Second)
	e.clk.add(time.Minute)
	e.push(t, strings.Repeat("c3", 20), true, true)
	e.clk.add(10 * time.Second)
	e.label(t, true)
	e.clk.add(10 * time.Second)
	e.push(t, e.sha, true, true)
	e.clk.add(time.Minute)
	e.trig.Recover(ctx)
	if got := e.dispatched(t); len(got) != 0 {
		t.Fatalf("dispatched %v, want nothing (the labelled commit was c3…, the head now %s)", got, short(e.sha))
	}
	if rs := e.requests(t); len(rs) != 1 || !strings.Contains(rs[0].Reason, "rewritten") {
		t.Errorf("requests = %+v; want one whose reason names the rewrite", rs)
	}
}

// TestRecoverAfterAnEarlierBuild: an earlier label on the first commit was
// built; after a push the label is added again and that webhook is lost.
// The earlier request (another commit) does not stop the recovery.
func TestRecoverAfterAnEarlierBuild(t *testing.T) {
	ctx := context.Background()
	e := newRecoverEnv(t, 10*time.Second)
	e.clk.add(time.Minute)
	e.label(t, false)
	e.trig.pass(ctx)
	pushed := strings.Repeat("d4", 20)
	e.clk.add(10 * time.Second)
	e.push(t, pushed, false, false)
	e.clk.add(10 * time.Second)
	e.label(t, true)
	e.clk.add(20 * time.Second)
	e.trig.pass(ctx)
	e.trig.Recover(ctx)
	if got := e.dispatched(t); len(got) != 2 || got[0] != e.sha || got[1] != pushed {
		t.Fatalf("dispatched %v, want the first commit, then the pushed one", got)
	}
}

// TestRecoverWithoutPush: no push after the lost label: the labelled
// commit, the current head, is built as before.
func TestRecoverWithoutPush(t *testing.T) {
	ctx := context.Background()
	e := newRecoverEnv(t, 10*time.Second)
	e.clk.add(time.Minute)
	e.label(t, true)
	e.clk.add(time.Minute)
	e.trig.Recover(ctx)
	if got := e.dispatched(t); len(got) != 1 || got[0] != e.sha {
		t.Fatalf("dispatched %v, want one run at %s", got, e.sha)
	}
}

// TestRecoverTakesTheStoredLabelEvent: the labeled webhook was stored but
// not handled yet when the scan finds the label (a later push's webhook
// was lost, so the history alone leaves the commit open). The stored
// event names its commit: one build, of that commit, and no comment
// asking for the label again. The scan leaves the event to its webhook
// (a burst's backlog must not race the scan into a second request).
func TestRecoverTakesTheStoredLabelEvent(t *testing.T) {
	ctx := context.Background()
	e := newRecoverEnv(t, 10*time.Second)
	e.clk.add(time.Minute)
	e.label(t, false)
	e.clk.add(10 * time.Second)
	e.push(t, strings.Repeat("b2", 20), false, true)
	e.clk.add(time.Minute)
	e.trig.Recover(ctx)
	if rs := e.requests(t); len(rs) != 0 {
		t.Fatalf("the scan made %d request(s) for a label whose webhook waits to be handled: %+v", len(rs), rs)
	}
	e.trig.pass(ctx)
	e.trig.Recover(ctx)
	if got := e.dispatched(t); len(got) != 1 || got[0] != e.sha {
		t.Fatalf("dispatched %v, want one run at the labelled %s", got, e.sha)
	}
	for _, b := range e.commentBodies(t) {
		if strings.Contains(b, "add it again") {
			t.Errorf("comment asking for the label again although the event was stored:\n%s", b)
		}
	}
}

// TestScheduledCommentWaitsForTheBudget: with GitHub's write budget spent
// by the label removal and the dispatch, the scheduled comment (it only
// reports) does not hold the trigger: the pass returns, the run goes on
// (the request has its run id, no comment yet), and once the window
// frees a later pass posts the comment, once, and the request moves on:
// to done at once when its builds ended while the comment waited.
func TestScheduledCommentWaitsForTheBudget(t *testing.T) {
	ctx := context.Background()
	e := newRecoverEnv(t, time.Hour)
	budget := github.NewBudget(github.BudgetOptions{Limits: []github.Limit{{N: 2, Per: time.Minute}}, Now: e.clk.now})
	gh, err := github.New(e.trig.cfg.GitHub, github.Options{Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	e.trig = New(Options{Config: e.trig.cfg, Store: e.st, GitHub: gh, Now: e.clk.now})
	e.label(t, false)
	e.trig.pass(ctx) // returns: a pass that waited for the window would hang here
	rs := e.requests(t)
	if len(rs) != 1 || rs[0].RunID == 0 || rs[0].CommentID != 0 || rs[0].State != StateAccepted {
		t.Fatalf("requests %+v: want one, its run dispatched, its comment waiting", rs)
	}
	if got := e.dispatched(t); len(got) != 1 {
		t.Fatalf("dispatched %v, want one run", got)
	}
	if n := len(e.commentBodies(t)); n != 0 {
		t.Fatalf("%d comments with the budget spent", n)
	}
	// Its builds end meanwhile (every builder's final result): the
	// outcome waits for the comment, and the request ends with it.
	if _, err := Finish(ctx, e.st, rs[0].ID, "succeeded"); err != nil {
		t.Fatal(err)
	}
	e.clk.add(time.Minute)
	e.trig.pass(ctx)
	e.trig.pass(ctx)
	rs = e.requests(t)
	if len(rs) != 1 || rs[0].CommentID == 0 || rs[0].State != StateDone || rs[0].Reason != "succeeded" {
		t.Fatalf("requests %+v: want the comment posted and the request done, succeeded", rs)
	}
	if n := len(e.commentBodies(t)); n != 1 {
		t.Errorf("%d comments, want 1", n)
	}
	if got := e.dispatched(t); len(got) != 1 {
		t.Errorf("dispatched %v, want still one run", got)
	}
}

// TestPassTellsTheBudgetWhatRequestsWillWrite: after each pass the
// trigger tells GitHub's write budget what its open requests will still
// write before their builds run (label removal, dispatch, a JIT config
// per builder), and nothing once the run is dispatched: a dispatch GitHub
// answered 502 keeps its count until a later pass dispatches it.
func TestPassTellsTheBudgetWhatRequestsWillWrite(t *testing.T) {
	ctx := context.Background()
	e := newRecoverEnv(t, time.Hour)
	var told []int
	e.trig = New(Options{Config: e.trig.cfg, Store: e.st, GitHub: e.trig.gh, Now: e.clk.now,
		ExpectWrites: func(n int) { told = append(told, n) }})
	if err := e.sim.AddFault(ghsim.Fault{Kind: ghsim.FaultServerError, Method: "POST", Path: `/dispatches$`, Count: 1, Status: 502}); err != nil {
		t.Fatal(err)
	}
	e.label(t, false)
	e.trig.pass(ctx)
	// The labeled delivery before it was handled: its label, its
	// dispatch and one builder (the tier's one pool); after (handling
	// advances the request, and the pass tries again): the label went,
	// the dispatch did not.
	if want := []int{3, 2, 2}; !slices.Equal(told, want) {
		t.Fatalf("the budget was told %v, want %v", told, want)
	}
	if got := e.dispatched(t); len(got) != 0 {
		t.Fatalf("dispatched %v with the dispatch answered 502", got)
	}
	told = nil
	e.clk.add(time.Minute) // past the grace after the unanswered dispatch
	e.trig.pass(ctx)
	if want := []int{2, 0}; !slices.Equal(told, want) {
		t.Fatalf("the budget was told %v, want %v", told, want)
	}
	if got := e.dispatched(t); len(got) != 1 {
		t.Fatalf("dispatched %v, want one run", got)
	}
	// Nothing open to advance: the pass tells the budget nothing new.
	told = nil
	e.trig.pass(ctx)
	if want := []int{0}; !slices.Equal(told, want) {
		t.Errorf("the budget was told %v, want %v", told, want)
	}
}

// TestSettlingIsNoWarning: a request waiting for an earlier attempt to
// settle is retried at every pass (five times a second in the proof);
// that wait logs at debug, the attempt's own failure at warn.
func TestSettlingIsNoWarning(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tr := New(Options{Now: func() time.Time { return now }, ResumeGrace: 12 * time.Second})
	err := tr.settling(&store.Request{ID: "r1", UpdatedAt: now.Add(-time.Second)})
	if err == nil || !retry.IsLater(err) {
		t.Fatalf("settling 1 s into a 12 s grace: %v, want a retry later", err)
	}
	if got := retryLevel(err); got != slog.LevelDebug {
		t.Errorf("a settle wait logs at %v, want debug", got)
	}
	failed := retry.Later(fmt.Errorf("dispatching quick.yml: %w", github.ErrBudgetBusy))
	if got := retryLevel(failed); got != slog.LevelDebug {
		t.Errorf("a budget wait logs at %v, want debug", got)
	}
	failed = retry.Later(fmt.Errorf("dispatching quick.yml: %w", errors.New("502 Bad Gateway")))
	if got := retryLevel(failed); got != slog.LevelWarn {
		t.Errorf("a failed attempt logs at %v, want warn", got)
	}
	if err := tr.settling(&store.Request{ID: "r1", UpdatedAt: now.Add(-13 * time.Second)}); err != nil {
		t.Errorf("settling after the grace: %v", err)
	}
}
