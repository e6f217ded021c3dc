package trigger

import (
	"context"
	"errors"
	"fmt"

	"github.com/buildfleet/buildfleet/manager/store"
)

// RunCompleted is how the fleet tells the trigger that a workflow run
// completed: the request that dispatched it moves from dispatched to done
// (compare-and-set), so it is no longer a candidate for superseding and
// later requests of the PR need not ask GitHub about it. A run that is not
// ours, or a request already past dispatched, is left alone.
func RunCompleted(ctx context.Context, st *store.Store, runID int64) error {
	req, err := st.RequestByRun(ctx, runID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not ours
	}
	if err != nil {
		return err
	}
	if req.State != StateDispatched {
		return nil
	}
	from, done := req.State, StateDone
	err = st.UpdateRequest(ctx, req.ID, store.RequestFields{From: &from, State: &done})
	if errors.Is(err, store.ErrConflict) {
		return nil // another actor ended or superseded it first
	}
	if err != nil {
		return fmt.Errorf("ending request %s of run %d: %w", req.ID, runID, err)
	}
	return nil
}

// Finish writes a done request's outcome (succeeded, failed, fleet_error,
// cancelled) once every builder has a final result; a request still
// dispatched (its workflow_run.completed not seen yet) is ended at once.
// A request whose run is recorded but which has not moved on to
// dispatched (its scheduled comment still waits for GitHub, while the
// builds ran) keeps the outcome in its reason and stays where it is: the
// trigger moves it on, and it ends done with that outcome when its run
// completes (RunCompleted changes only the state). It reports whether it
// wrote anything: a request superseded or failed meanwhile is not this
// path's to end.
func Finish(ctx context.Context, st *store.Store, id, outcome string) (bool, error) {
	r, err := st.Request(ctx, id)
	if err != nil {
		return false, err
	}
	if (r.State == StateAccepted || r.State == StateLocating) && r.RunID != 0 {
		from := r.State
		err := st.UpdateRequest(ctx, id, store.RequestFields{From: &from, Reason: &outcome})
		if errors.Is(err, store.ErrConflict) {
			return Finish(ctx, st, id, outcome) // moved on meanwhile: look again
		}
		if err != nil {
			return false, fmt.Errorf("keeping the outcome of request %s: %w", id, err)
		}
		return true, nil
	}
	if r.State != StateDispatched && r.State != StateDone {
		return false, nil
	}
	from, done := r.State, StateDone
	err = st.UpdateRequest(ctx, id, store.RequestFields{From: &from, State: &done, Reason: &outcome})
	if errors.Is(err, store.ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("finishing request %s: %w", id, err)
	}
	return true, nil
}
