package fleet

import (
	"context"
	"testing"

	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/store"
)

// TestRestartBetweenJITConfigAndDispatched resumes an attempt that a
// SIGKILL left in state starting after GitHub issued its JIT config. With
// the id not recorded, no runner can have the config: its registration is
// removed and the same attempt registers again (a restart is not a host's
// failure and must not use up the job's attempts). With the id recorded
// the secret may have reached the child: a runner that connected goes on,
// any other attempt is abandoned with its child stopped (a stopped child
// blames no host), as the config is lost.
func TestRestartBetweenJITConfigAndDispatched(t *testing.T) {
	const name = "bf-linux-quick-100-1"
	for _, tc := range []struct {
		test     string
		runnerID int64 // recorded before the kill (0: the process died first)
		status   string
		busy     bool
		// wantState is the attempt's state after the restart's pass,
		// wantJIT the JIT configs issued, wantDeleted the registrations
		// removed, wantStopped the children stopped.
		wantState   string
		wantJIT     int
		wantDeleted int
		wantStopped int
	}{
		{"id not recorded", 0, "offline", false, StateDispatched, 1, 1, 0},
		{"id recorded, runner not connected", 41, "offline", false, StateFailed, 0, 1, 1},
		{"id recorded, runner connected", 41, "online", false, StateDispatched, 0, 0, 0},
		{"runner took its job", 41, "online", true, StateDispatched, 0, 0, 0},
	} {
		t.Run(tc.test, func(t *testing.T) {
			f, st, gh, nm := newTestFleet(t, 4)
			ourRequest(t, st, "dispatched", 7)
			ctx := context.Background()
			if _, err := st.CreateRunner(ctx, store.Runner{GitHubJobID: 100, Attempt: 1, RunID: 7, RequestID: "r1", Repo: "o/r",
				Pool: "linux-quick", RunnerName: name, RunnerID: tc.runnerID, NomadJobID: "child-0", State: StateStarting}); err != nil {
				t.Fatal(err)
			}
			gh.registered = []github.SelfHostedRunner{{ID: 41, Name: name, Status: tc.status, Busy: tc.busy}}
			_ = f.HandleJob(ctx, delivery("d1", "queued", 100, 7, ""))
			r, err := st.Runner(ctx, 100, 1)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != tc.wantState {
				t.Errorf("attempt 1 in state %s, want %s", r.State, tc.wantState)
			}
			if len(gh.jit) != tc.wantJIT || len(gh.deleted) != tc.wantDeleted || len(nm.stopped) != tc.wantStopped {
				t.Errorf("%d JIT configs issued, registrations deleted %v, children stopped %v; want %d, %d and %d",
					len(gh.jit), gh.deleted, nm.stopped, tc.wantJIT, tc.wantDeleted, tc.wantStopped)
			}
		})
	}
}

// TestStartInFlightIsNoRestartLeftover: an attempt in state starting with
// its JIT config's id recorded is a restart's leftover only when no start
// of its job is in flight: while its own start is between GitHub's answer
// and the row's dispatched state, the loop's other paths (a pass meeting
// a replayed queued delivery, the sweep) leave it alone. Taking it for a
// leftover removed the registration and stopped the child of a runner
// that had just taken its job: the PR's failure.
func TestStartInFlightIsNoRestartLeftover(t *testing.T) {
	const name = "bf-linux-quick-100-1"
	f, st, gh, nm := newTestFleet(t, 4)
	ourRequest(t, st, "dispatched", 7)
	ctx := context.Background()
	if _, err := st.CreateRunner(ctx, store.Runner{GitHubJobID: 100, Attempt: 1, RunID: 7, RequestID: "r1", Repo: "o/r",
		Pool: "linux-quick", RunnerName: name, RunnerID: 41, NomadJobID: "child-0", State: StateStarting}); err != nil {
		t.Fatal(err)
	}
	// Registered, not yet online: its runner is still starting.
	gh.registered = []github.SelfHostedRunner{{ID: 41, Name: name, Status: "offline"}}
	d := delivery("d1", "queued", 100, 7, "")
	if _, err := st.PutDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	// The job's start in flight, as goStart marks it.
	f.starts.jobs[100] = true
	f.pass(ctx)
	f.sweep(ctx)
	r, err := st.Runner(ctx, 100, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != StateStarting {
		t.Errorf("attempt 1 in state %s, want %s (left to the start in flight)", r.State, StateStarting)
	}
	if len(gh.jit) != 0 || len(gh.deleted) != 0 || len(nm.stopped) != 0 {
		t.Errorf("%d JIT configs issued, registrations deleted %v, children stopped %v; want none", len(gh.jit), gh.deleted, nm.stopped)
	}
}
