package trigger

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/manager/lifecycle"
	"github.com/buildfleet/buildfleet/manager/store"
)

// TestFinishBeforeDispatchedKeepsTheOutcome: the builds of a request ran
// to their end while its scheduled comment still waited for GitHub (the
// request accepted, its run recorded). The outcome is kept, and the
// request ends done with it once it moved on and its run completed;
// before, Finish dropped it and the request ended done with no outcome.
func TestFinishBeforeDispatchedKeepsTheOutcome(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, _, err := st.CreateRequest(ctx, store.Request{ID: "r1", DeliveryID: "d1", Repo: "o/r", PR: 1, SHA: "abc",
		Tier: "quick", Label: "l", Actor: "a", State: StateChecking, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	accepted, run := StateAccepted, int64(7)
	if err := st.UpdateRequest(ctx, r.ID, store.RequestFields{From: &r.State, State: &accepted, RunID: &run}); err != nil {
		t.Fatal(err)
	}
	if ok, err := Finish(ctx, st, r.ID, lifecycle.OutcomeSucceeded); err != nil || !ok {
		t.Fatalf("Finish = %v, %v; want the outcome kept", ok, err)
	}
	if got, _ := st.Request(ctx, r.ID); got.State != StateAccepted || got.Reason != lifecycle.OutcomeSucceeded {
		t.Fatalf("after Finish: state %s reason %q, want accepted with the outcome", got.State, got.Reason)
	}
	dispatched := StateDispatched
	if err := st.UpdateRequest(ctx, r.ID, store.RequestFields{From: &accepted, State: &dispatched}); err != nil {
		t.Fatal(err)
	}
	if err := RunCompleted(ctx, st, run); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Request(ctx, r.ID); got.State != StateDone || got.Reason != lifecycle.OutcomeSucceeded {
		t.Errorf("run completed: state %s reason %q, want done with outcome %s", got.State, got.Reason, lifecycle.OutcomeSucceeded)
	}
}
