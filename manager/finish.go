package manager

import (
	"context"

	"github.com/buildfleet/buildfleet/manager/trigger"
)

// finishRequest ends a request once every builder has a final result
// (report.Outcome): its state becomes final and its reason says how it
// ended (succeeded, failed, fleet_error, cancelled). The move itself is the
// trigger's (a compare-and-set), so a request superseded or failed
// meanwhile is left as it is.
func (m *Manager) finishRequest(ctx context.Context, id, outcome string) {
	ok, err := trigger.Finish(ctx, m.store, id, outcome)
	if err != nil {
		m.log.Warn("finishing a request", "request", id, "err", err)
		return
	}
	if ok {
		m.log.Info("request finished", "request", id, "outcome", outcome)
	}
}
