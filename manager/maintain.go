package manager

import (
	"context"
	"time"

	"github.com/buildfleet/buildfleet/config"
)

// How often the store is kept in shape: the WAL checkpointed (TRUNCATE,
// so it never keeps the size a burst or an outage gave it), and handled
// deliveries older than store.retention pruned.
const (
	checkpointEvery = 5 * time.Minute
	pruneEvery      = time.Hour
	pruneBatch      = 1000
)

// maintain checkpoints the store's WAL and prunes old deliveries until ctx
// ends; once at start too, so a manager restarted after an outage gives
// the WAL's space back at once.
func (m *Manager) maintain(ctx context.Context) {
	cp := time.NewTicker(checkpointEvery)
	defer cp.Stop()
	pr := time.NewTicker(pruneEvery)
	defer pr.Stop()
	m.prune(ctx)
	m.checkpoint(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-cp.C:
			m.checkpoint(ctx)
		case <-pr.C:
			m.prune(ctx)
			m.checkpoint(ctx)
		}
	}
}

func (m *Manager) checkpoint(ctx context.Context) {
	if err := m.store.Checkpoint(ctx); err != nil && ctx.Err() == nil {
		m.log.Warn("store checkpoint", "err", err)
	}
}

// prune deletes handled deliveries past the retention, in batches so the
// webhook's writes are never held back long.
func (m *Manager) prune(ctx context.Context) {
	keep := time.Duration(m.cfg.Store.Retention)
	if keep <= 0 {
		keep = config.DefaultStoreRetention
	}
	before := m.now().Add(-keep)
	var total int64
	for ctx.Err() == nil {
		n, err := m.store.PruneDeliveries(ctx, before, pruneBatch)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Warn("pruning deliveries", "err", err)
			}
			return
		}
		total += n
		if n < pruneBatch {
			break
		}
	}
	if total > 0 {
		m.log.Info("old deliveries pruned", "count", total, "before", before.Format(time.RFC3339))
	}
}
