package fleet

import (
	"context"
	"fmt"
	"regexp"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/store"
)

// GitHub refuses a runner that lags a new release by more than 30 days (at
// once after a critical security release): the JIT runner registers, is
// told "Runner version vX is deprecated and cannot receive messages.",
// prints it and exits, and its job stays queued. Another attempt with the
// same release would be refused the same way, so the fleet recognises the
// message in the runner's log, asks GitHub for its current release, and
// either starts the next attempt with a newer one or reports the job as
// the fleet's error with that reason (never as the PR's failure).

// deprecatedRE is the message of GitHub's runner, with the version.
var deprecatedRE = regexp.MustCompile(`Runner version v?([0-9][0-9.]*[0-9]) is deprecated and cannot receive messages`)

// LogReader reads the end of a finished runner's output.
type LogReader interface {
	RunnerLogTail(ctx context.Context, allocID string) (string, error)
}

// Refresher asks GitHub for its current runner release now.
type Refresher interface {
	Refresh(ctx context.Context) error
}

var _ LogReader = (*nomad.Client)(nil)

// refusedVersion tells whether the runner of an allocation that ended
// without taking its job was refused by GitHub as outdated, and which
// version it ran.
func (f *Fleet) refusedVersion(ctx context.Context, allocID string) (string, bool) {
	lr, ok := f.nm.(LogReader)
	if !ok || allocID == "" {
		return "", false
	}
	tail, err := lr.RunnerLogTail(ctx, allocID)
	if err != nil {
		f.log.Warn("reading the log of a runner that took no job", "alloc", allocID, "err", err)
	}
	m := deprecatedRE.FindStringSubmatch(tail)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// outdated handles an attempt whose runner GitHub refused as outdated:
// with a newer release from GitHub, the next attempt; otherwise (frozen,
// pinned, or GitHub's own list no newer) the fleet's error on the PR.
func (f *Fleet) outdated(ctx context.Context, r store.Runner, version string) error {
	reason := fmt.Sprintf("GitHub refused runner %s as outdated (\"Runner version v%s is deprecated and cannot receive messages.\")", version, version)
	f.log.Warn("runner refused by GitHub as outdated", "runner", r.RunnerName, "version", version)
	if err := f.st.UpdateRunner(ctx, r.GitHubJobID, r.Attempt, store.RunnerFields{NomadReason: &reason}); err != nil {
		return err
	}
	r.NomadReason = reason
	pool := f.pool(r.Pool)
	_ = f.fail(ctx, r, pool, fmt.Errorf("%s", reason))
	r.State = StateFailed
	if rf, ok := f.pkgs.(Refresher); ok {
		if err := rf.Refresh(ctx); err != nil {
			f.log.Warn("asking GitHub for its runner release", "err", err)
		}
	}
	if pool != nil && f.pkgs != nil && r.Attempt < maxAttempts {
		if plat, err := config.ParsePlatform(pool.Platform); err == nil {
			if p, err := f.pkgs.For(ctx, plat); err == nil && p.Version != version {
				return f.next(ctx, r) // GitHub's current release this time
			}
		}
	}
	req, err := f.st.Request(ctx, r.RequestID)
	if err != nil {
		return fmt.Errorf("%w: %w", errPending, err)
	}
	if err := f.report(ctx, req, r, "error", reason); err != nil {
		return err
	}
	return f.close(ctx, r, StateGaveUp)
}
