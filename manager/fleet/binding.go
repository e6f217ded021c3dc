package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/runnerpkg"
	"github.com/buildfleet/buildfleet/manager/store"
	"github.com/buildfleet/buildfleet/manager/trigger"
)

// builderPool maps a queued job of one of our runs to its pool through the
// binding label the trigger made for that builder: the job's runs-on labels
// must be exactly one builder's labels. Matching label sets against the
// pools would start a runner for any job that asks for a pool's labels. On
// failure it says why, for the PR.
func (f *Fleet) builderPool(req store.Request, jobLabels []string) (*config.Pool, string) {
	b, ok := trigger.BuilderOf(req.Builders, jobLabels)
	if !ok {
		return nil, fmt.Sprintf("runs-on [%s] is no builder's label of this request: the workflow must run on ${{ matrix.builder.labels }}",
			strings.Join(jobLabels, ", "))
	}
	p := f.pool(b.Name)
	if p == nil {
		return nil, fmt.Sprintf("pool %s is no longer configured", b.Name)
	}
	return p, ""
}

// builderNamed finds a request's builder by pool name.
func builderNamed(req store.Request, name string) (trigger.Builder, bool) {
	var bs []trigger.Builder
	if err := json.Unmarshal([]byte(req.Builders), &bs); err != nil {
		return trigger.Builder{}, false
	}
	for _, b := range bs {
		if b.Name == name && len(b.Labels) > 0 {
			return b, true
		}
	}
	return trigger.Builder{}, false
}

// runnerPackage is the archive the pool's runners download and its
// checksum, from GitHub's list of runner downloads. A platform GitHub
// ships no runner for gets none: its pool's command brings its runner.
// A pool that runs github-act-runner gets that archive, from act_runner.
func (f *Fleet) runnerPackage(ctx context.Context, pool config.Pool) (nomad.Package, error) {
	if pool.Runner != config.RunnerActRunner && f.pkgs == nil {
		return nomad.Package{}, nil
	}
	plat, err := config.ParsePlatform(pool.Platform)
	if err != nil {
		return nomad.Package{}, fmt.Errorf("pool %s: %w", pool.Name, err)
	}
	if pool.Runner == config.RunnerActRunner {
		if f.act == nil {
			return nomad.Package{}, fmt.Errorf("pool %s runs github-act-runner, but no act_runner checksums were loaded", pool.Name)
		}
		p, err := f.act.For(plat)
		if err != nil {
			return nomad.Package{}, fmt.Errorf("pool %s: %w", pool.Name, err)
		}
		return nomad.Package{URL: p.URL, SHA256: p.SHA256, Version: p.Version}, nil
	}
	p, err := f.pkgs.For(ctx, plat)
	if errors.Is(err, runnerpkg.ErrNoPackage) {
		return nomad.Package{}, nil
	}
	if err != nil {
		return nomad.Package{}, err
	}
	return nomad.Package{URL: p.URL, SHA256: p.SHA256, Version: p.Version}, nil
}
