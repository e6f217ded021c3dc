package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/nomad"
)

// PoolKeeper keeps the pool jobs an operator registered, so that the
// manager can register them again when Nomad lost its state (an agent
// restarted without its data dir: every dispatch then fails with
// "parameterized job not found" until someone applies the pools again).
type PoolKeeper interface {
	PoolSpec(ctx context.Context, pool config.Pool) ([]byte, error)
	RestorePool(ctx context.Context, spec []byte) error
}

var _ PoolKeeper = (*nomad.Client)(nil)

// kvPoolSpec is the store key of a pool's kept job: it survives a restart
// of the manager that happens together with Nomad's loss.
func kvPoolSpec(pool string) string { return "fleet.pool_job." + pool }

// keepPools reads each pool's job from Nomad and keeps it in the store.
// A pool job Nomad no longer knows is registered again from what was
// kept (Nomad lost its state); one never kept is left to the operator.
func (f *Fleet) keepPools(ctx context.Context) {
	if f.pools == nil {
		return
	}
	for _, p := range f.cfg.Pools {
		spec, err := f.pools.PoolSpec(ctx, p)
		if errors.Is(err, nomad.ErrNotFound) {
			if kept, kerr := f.st.GetKV(ctx, kvPoolSpec(p.Name)); kerr == nil && kept != "" {
				f.log.Warn("nomad lost a pool job: registering it again", "pool", p.Name)
				if rerr := f.pools.RestorePool(ctx, []byte(kept)); rerr != nil {
					f.log.Warn("registering a pool job again", "pool", p.Name, "err", rerr)
				}
			}
			continue
		}
		if err != nil {
			f.log.Debug("reading a pool job to keep", "pool", p.Name, "err", err)
			continue
		}
		if err := f.st.PutKV(ctx, kvPoolSpec(p.Name), string(spec)); err != nil {
			f.log.Warn("keeping a pool job", "pool", p.Name, "err", err)
		}
	}
}

// dispatchChild dispatches a runner's child; when Nomad no longer knows
// the pool's job, it registers the kept job again and dispatches once
// more.
func (f *Fleet) dispatchChild(ctx context.Context, pool config.Pool, r nomad.Runner) (string, error) {
	child, err := f.nm.DispatchChild(ctx, pool, r)
	if err == nil || !errors.Is(err, nomad.ErrNotFound) || f.pools == nil {
		return child, err
	}
	spec, kerr := f.st.GetKV(ctx, kvPoolSpec(pool.Name))
	if kerr != nil || spec == "" {
		return "", fmt.Errorf("%w (and no kept job of pool %s to register again)", err, pool.Name)
	}
	f.log.Warn("nomad lost a pool job: registering it again", "pool", pool.Name, "err", err)
	if rerr := f.pools.RestorePool(ctx, []byte(spec)); rerr != nil {
		return "", fmt.Errorf("registering pool %s again: %w (after: %w)", pool.Name, rerr, err)
	}
	return f.nm.DispatchChild(ctx, pool, r)
}

// writeSecret writes a runner's JIT config, trying a few times over a few
// seconds: the config exists only in memory, and a Nomad that has just
// come back (its keyring not ready yet) refuses variable writes for a
// moment; failing at once would spend the job's attempts in milliseconds.
func (f *Fleet) writeSecret(ctx context.Context, pool config.Pool, r nomad.Runner) error {
	wait := 200 * time.Millisecond
	for try := 1; ; try++ {
		err := f.nm.WriteRunnerSecret(ctx, pool, r)
		if err == nil || try == 5 || ctx.Err() != nil {
			return err
		}
		f.log.Warn("writing a JIT config failed, trying again", "runner", r.Name, "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}
