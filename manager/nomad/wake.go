package nomad

import (
	"context"

	"github.com/hashicorp/nomad/api"
)

// wakeBlocked re-evaluates every runner that waits for a host, after a
// host's drain was called off and left it eligible.
//
// Nomad 1.10 unblocks waiting evaluations when a node becomes eligible
// through an eligibility change, but not when `nomad node drain -disable`
// makes it eligible: runners that waited during the drain would go on
// waiting until something else changed on the host. A new evaluation of
// their child job places them at once. It needs submit-job, which the
// manager's policy has for stopping runners.
func (w *watcher) wakeBlocked(ctx context.Context, node string) {
	for id, t := range w.runners {
		if t.u.State != StateBlocked && t.u.State != StatePending {
			continue
		}
		q := (&api.WriteOptions{Namespace: w.c.ns}).WithContext(ctx)
		if _, _, err := w.c.api.Jobs().EvaluateWithOpts(id, api.EvalOptions{}, q); err != nil {
			w.c.log().Warn("re-evaluating a waiting runner after a drain was called off", "nomad_job", id, "node", node, "err", err)
			continue
		}
		w.c.log().Info("re-evaluated a waiting runner: a drain was called off", "nomad_job", id, "node", node)
	}
}
