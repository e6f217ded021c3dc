package manager

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/internal/ghsim"
)

// ghClock is GitHub's clock in the recovery tests: 10 minutes behind the
// manager's, so a label looks old enough for the scan, and moved on by the
// test so that a push and a label are seconds apart without waiting.
type ghClock struct{ offset atomic.Int64 }

func newGHClock() *ghClock {
	c := &ghClock{}
	c.offset.Store(int64(-10 * time.Minute))
	return c
}

func (c *ghClock) now() time.Time      { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *ghClock) add(d time.Duration) { c.offset.Add(int64(d)) }

// deliveredOrDropped waits until ghsim finished n pull_request deliveries
// of the action (answered by the manager, or dropped).
func (h *harness) deliveredOrDropped(action string, n int) {
	h.t.Helper()
	eventually(h.t, "the "+action+" webhooks sent", func() bool {
		got := 0
		for _, d := range h.gh.Deliveries() {
			if d.Event == "pull_request" && d.Action == action {
				got++
			}
		}
		return got >= n
	})
}

// dropNextPullRequestWebhook makes ghsim lose the next pull_request
// delivery, as GitHub sometimes does.
func (h *harness) dropNextPullRequestWebhook() {
	h.t.Helper()
	if err := h.gh.AddFault(ghsim.Fault{Kind: ghsim.FaultDrop, Event: "pull_request", Count: 1}); err != nil {
		h.t.Fatal(err)
	}
}

// newRecoverHarness is a harness whose PR has a head history the manager
// saw (the PR was opened before the manager's webhook existed, so a push
// it receives starts that history) and whose label scan runs only when
// the test asks (RecoverSoon).
func newRecoverHarness(t *testing.T) (*harness, *ghClock) {
	clk := newGHClock()
	h := newHarnessWith(t, ghsim.Options{Now: clk.now}, -1)
	h.sha = strings.Repeat("e5", 20)
	if err := h.gh.PushPR(e2eRepo, h.pr, h.sha); err != nil {
		t.Fatal(err)
	}
	h.deliveredOrDropped("synchronize", 1)
	clk.add(30 * time.Second)
	return h, clk
}

// TestLostLabelThenPushBuildsTheLabelledCommit: the labeled webhook is
// lost, the author pushes afterwards and that webhook arrives. The scan
// builds the labelled commit, not the PR's head, exactly once.
func TestLostLabelThenPushBuildsTheLabelledCommit(t *testing.T) {
	h, clk := newRecoverHarness(t)
	h.dropNextPullRequestWebhook()
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.deliveredOrDropped("labeled", 1)
	clk.add(10 * time.Second)
	pushed := strings.Repeat("f6", 20)
	if err := h.gh.PushPR(e2eRepo, h.pr, pushed); err != nil {
		t.Fatal(err)
	}
	h.deliveredOrDropped("synchronize", 2)
	h.m.trig.RecoverSoon()
	eventually(t, "a run from the recovered label", func() bool { return len(h.runs()) == 1 })
	for range 3 {
		h.m.trig.RecoverSoon()
		time.Sleep(100 * time.Millisecond)
	}
	runs := h.runs()
	if len(runs) != 1 {
		t.Fatalf("%d runs, want 1", len(runs))
	}
	if sha := runs[0]["inputs"].(map[string]any)["sha"]; sha != h.sha {
		t.Errorf("dispatched sha %v, want the labelled %s (not the later push %s)", sha, h.sha, pushed)
	}
	reqs, _ := h.m.store.ListRequests(context.Background(), 10)
	if len(reqs) != 1 || reqs[0].DeliveryID != "recovered" || reqs[0].SHA != h.sha {
		t.Errorf("requests = %+v; want one recovered request at %s", reqs, h.sha)
	}
}

// TestLostLabelAndPushBuildNothing: the labeled and the synchronize
// webhooks are both lost, so which commit the label was added on cannot
// be known. Nothing is dispatched; one comment asks for the label again,
// however often the scan runs; `buildfleet status` shows why.
func TestLostLabelAndPushBuildNothing(t *testing.T) {
	h, clk := newRecoverHarness(t)
	h.dropNextPullRequestWebhook()
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.deliveredOrDropped("labeled", 1)
	clk.add(10 * time.Second)
	h.dropNextPullRequestWebhook()
	if err := h.gh.PushPR(e2eRepo, h.pr, strings.Repeat("f6", 20)); err != nil {
		t.Fatal(err)
	}
	h.deliveredOrDropped("synchronize", 2)
	h.m.trig.RecoverSoon()
	eventually(t, "a comment asking for the label again", func() bool { return len(h.comments()) == 1 })
	for range 3 {
		h.m.trig.RecoverSoon()
		time.Sleep(100 * time.Millisecond)
	}
	if n := h.calls("POST", "/dispatches"); n != 0 {
		t.Errorf("%d dispatches, want none", n)
	}
	if cs := h.comments(); len(cs) != 1 || !strings.Contains(cs[0]["body"].(string), "add it again") {
		t.Errorf("comments = %v, want exactly one asking for the label again", cs)
	}
	if len(h.labels()) != 0 {
		t.Errorf("label still on the PR: %v", h.labels())
	}
	reqs, _ := h.m.store.ListRequests(context.Background(), 10)
	if len(reqs) != 1 || reqs[0].State != "skipped" || !strings.Contains(reqs[0].Reason, "commit the label was added on is unknown") {
		t.Errorf("requests = %+v; want one skipped, saying the commit is unknown", reqs)
	}
}

// TestLabelWhileManagerDownBuiltAfterRestart: the label is added while the
// manager is down (its webhook finds nobody, and GitHub does not send it
// again). The scan at start builds it; the periodic scan is too far off to
// be the one.
func TestLabelWhileManagerDownBuiltAfterRestart(t *testing.T) {
	h, _ := newRecoverHarness(t)
	h.stop()
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.deliveredOrDropped("labeled", 1)
	h.recoverEvery = time.Hour
	h.start()
	eventually(t, "a run from the label added while the manager was down", func() bool { return len(h.runs()) == 1 })
	if sha := h.runs()[0]["inputs"].(map[string]any)["sha"]; sha != h.sha {
		t.Errorf("dispatched sha %v, want the labelled %s", sha, h.sha)
	}
}
