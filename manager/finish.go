package manager

import (
	"context"

	"github.com/buildfleet/buildfleet/manager/store"
	"github.com/buildfleet/buildfleet/manager/trigger"
)

// finishRequest ends a request once every builder has a final result
// (report.Outcome): its state becomes final and its reason says how it
// ended (succeeded, failed, fleet_error, cancelled). This is the one place
// that maps builders' results to a request's end.
func (m *Manager) finishRequest(ctx context.Context, id, outcome string) {
	r, err := m.store.Request(ctx, id)
	if err != nil {
		m.log.Warn("finishing a request", "request", id, "err", err)
		return
	}
	if r.State != trigger.StateDispatched && r.State != trigger.StateDone {
		return // superseded, or not this path's to end
	}
	state := trigger.StateDone
	if err := m.store.UpdateRequest(ctx, id, store.RequestFields{State: &state, Reason: &outcome}); err != nil {
		m.log.Warn("finishing a request", "request", id, "err", err)
		return
	}
	m.log.Info("request finished", "request", id, "outcome", outcome)
}
