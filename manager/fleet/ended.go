package fleet

import (
	"context"
	"fmt"
	"time"

	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/store"
)

// KillTeller tells a runner that its host killed from one that exited by
// itself (see nomad.Client.RunnerKilled).
type KillTeller interface {
	RunnerKilled(ctx context.Context, dispatchedJobID string) (why string, running bool, err error)
}

var _ KillTeller = (*nomad.Client)(nil)

// killWait bounds how long a failed job's result waits for its runner's
// task to end, to tell a kill from the build's own failure.
const killWait = 30 * time.Second

// killed says why a running attempt's runner, whose job GitHub says
// failed, was killed by its host, or "" when it exited by itself or
// Nomad cannot tell (a Nomad without RunnerKilled). While the task still
// runs with no kill seen (the runner has just reported), it answers
// errPending for up to killWait, so the result waits for the task's end.
func (f *Fleet) killed(ctx context.Context, r store.Runner) (string, error) {
	k, ok := f.nm.(KillTeller)
	if !ok {
		return "", nil
	}
	why, running, err := k.RunnerKilled(ctx, r.NomadJobID)
	if err != nil {
		return "", fmt.Errorf("%w: asking Nomad how runner %s ended: %w", errPending, r.RunnerName, err)
	}
	f.killMu.Lock()
	defer f.killMu.Unlock()
	if f.killAsked == nil {
		f.killAsked = map[int64]time.Time{}
	}
	first, ok := f.killAsked[r.GitHubJobID]
	if !ok {
		first = f.now()
		f.killAsked[r.GitHubJobID] = first
	}
	if running && why == "" && f.now().Sub(first) < killWait {
		return "", fmt.Errorf("%w: runner %s has not ended yet", errPending, r.RunnerName)
	}
	delete(f.killAsked, r.GitHubJobID)
	return why, nil
}

// goneGrace is how long after its dispatch a child missing from Nomad's
// list of live children is still given (a list read just before it).
const goneGrace = 5 * time.Second

// notWaiting says why a dispatched attempt's runner can no longer take its
// job, or "" while it may: its child exited without taking it (a runner
// that got a stop signal while it waited exits cleanly), ended otherwise,
// or Nomad no longer knows it (it lost its state). Nomad's failed, lost
// and stopped children are replaced as they are reported (follow); these
// are the ones only a look at GitHub's queued job tells apart.
func (f *Fleet) notWaiting(ctx context.Context, r store.Runner, live *liveSet) string {
	if r.NomadJobID == "" || r.DispatchedAt.IsZero() {
		return ""
	}
	switch nomad.State(r.NomadState) {
	case nomad.StateComplete:
		return "its runner exited without taking the job"
	case nomad.StateFailed, nomad.StateLost, nomad.StateStopped:
		if r.NomadReason != "" {
			return r.NomadReason
		}
		return "its allocation " + r.NomadState
	}
	if f.now().Sub(r.DispatchedAt) < goneGrace {
		return ""
	}
	if ok, err := live.has(ctx, r.NomadJobID); err != nil || ok {
		return ""
	}
	return "its Nomad job is gone (Nomad lost it)"
}
