package fleet

import (
	"context"
	"errors"
	"fmt"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/store"
)

// ScaleSets is what the fleet needs from the scale-set source
// (manager/scaleset) for pools with source "scaleset": their demand comes
// as workflow_job deliveries the source stores, each naming its runner
// request; the fleet acquires the request once it knows the run is
// buildfleet's, and asks each runner's JIT config through the set.
type ScaleSets interface {
	Acquire(ctx context.Context, pool, repo string, requestID int64) error
	GenerateJITConfig(ctx context.Context, pool, repo, name string) (int64, config.Secret, error)
}

// scaleSetQueued handles what is particular to a queued job of a
// scale-set pool; it reports true when no runner is to be started here.
// A workflow_job webhook for such a pool starts nothing (the set's queue
// is the pool's source, and a runner outside the set would not get the
// job); a delivery from the set acquires its request first (again after a
// restart: acquiring is idempotent).
func (f *Fleet) scaleSetQueued(ctx context.Context, req store.Request, e jobEvent) (bool, error) {
	pool, _ := f.builderPool(req, e.WorkflowJob.Labels)
	if pool == nil || pool.Source != config.SourceScaleSet {
		return false, nil
	}
	if e.ScaleSet == nil {
		f.log.Debug("webhook for a scale-set pool ignored", "job", e.WorkflowJob.ID, "pool", pool.Name)
		return true, nil
	}
	if f.sets == nil {
		return true, errors.New("pool " + pool.Name + " has source scaleset but no scale-set source runs")
	}
	if err := f.sets.Acquire(ctx, pool.Name, req.Repo, e.ScaleSet.RequestID); err != nil {
		f.log.Warn("acquiring a job for the scale set", "job", e.WorkflowJob.ID, "pool", pool.Name, "err", err)
		return true, fmt.Errorf("%w: %w", errPending, err)
	}
	return false, nil
}

// jitConfig registers the runner: through the scale set for a scale-set
// pool (the runner gets the set's label), else as a repository runner
// with the builder's labels.
func (f *Fleet) jitConfig(ctx context.Context, pool config.Pool, fullRepo, name string, labels []string) (int64, config.Secret, error) {
	if pool.Source == config.SourceScaleSet {
		if f.sets == nil {
			return 0, "", errors.New("pool " + pool.Name + " has source scaleset but no scale-set source runs")
		}
		return f.sets.GenerateJITConfig(ctx, pool.Name, fullRepo, name)
	}
	owner, repo := splitRepo(fullRepo)
	return f.gh.GenerateJITConfig(ctx, owner, repo, name, github.DefaultRunnerGroup, labels)
}
