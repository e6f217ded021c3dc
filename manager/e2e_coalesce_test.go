package manager

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestIdenticalLabelsCoalesce: the label added again and again on the
// same commit while its build is in flight gives one run and one
// comment; every other request ends skipped naming the first.
func TestIdenticalLabelsCoalesce(t *testing.T) {
	h := newHarness(t)
	const n = 12
	for i := 0; i < n; i++ {
		if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "core"); err != nil {
			t.Fatal(err)
		}
		// Taken off again at once, so that the next add is a new labeled
		// event (adding a label a PR has does nothing).
		_ = h.gh.UnlabelPR(e2eRepo, h.pr, quick, "core")
	}
	eventually(t, "every request handled", func() bool {
		reqs, _ := h.m.store.ListRequests(context.Background(), 100)
		if len(reqs) != n {
			return false
		}
		for _, r := range reqs {
			if r.State != "dispatched" && r.State != "skipped" {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond) // a few more passes: nothing else happens
	if runs := h.runs(); len(runs) != 1 {
		t.Errorf("%d runs, want 1", len(runs))
	}
	if cs := h.comments(); len(cs) != 1 {
		t.Errorf("%d comments, want 1", len(cs))
	}
	reqs, _ := h.m.store.ListRequests(context.Background(), 100)
	skipped := 0
	for _, r := range reqs {
		if r.State == "skipped" && strings.HasPrefix(r.Reason, "same commit and tier already being built by request ") {
			skipped++
		}
	}
	if skipped != n-1 {
		t.Errorf("%d requests coalesced, want %d", skipped, n-1)
	}
}
