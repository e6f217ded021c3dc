package manager

import (
	"context"
	"sync/atomic"
	"time"
)

// storeOutage follows whether the store refused a write (a delivery
// answered 503, or the /readyz probe), so that once it writes again the
// label scan looks for the labels whose webhooks were refused meanwhile
// (GitHub does not redeliver them, and the label still on the PR is their
// only trace) and every run in flight is compared with GitHub's jobs (for
// the refused workflow_job webhooks).
//
//	ok ──write refused──▶ down ──a probe or any write kept──▶ ok + label scan
type storeOutage struct {
	down atomic.Bool
	kick chan struct{} // wakes watchStore when an outage starts
}

func newStoreOutage() *storeOutage { return &storeOutage{kick: make(chan struct{}, 1)} }

// storeResult is told the outcome of a store write the manager depends on.
func (m *Manager) storeResult(err error) {
	if err != nil {
		if !m.outage.down.Swap(true) {
			m.log.Warn("the store refused a write; webhooks get 503 until it writes again", "err", err)
			select {
			case m.outage.kick <- struct{}{}:
			default:
			}
		}
		return
	}
	if m.outage.down.CompareAndSwap(true, false) {
		m.log.Info("the store writes again; looking for labels whose webhooks were refused")
		m.trig.RecoverSoon()
		m.fleet.ReconcileAll()
	}
}

// watchStore probes the store during an outage, every second (or
// ProbeEvery, if shorter), so the end of an outage is seen at once even
// when no webhook comes to show it; a refused probe costs one failed
// write.
func (m *Manager) watchStore(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.outage.kick:
		}
		for m.outage.down.Load() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(m.probeEvery(), time.Second)):
			}
			m.storeResult(m.store.Writable(ctx))
		}
	}
}
