package fleet

import (
	"context"
	"testing"

	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/store"
)

// TestRestartBetweenJITConfigAndDispatched resumes an attempt that a
// SIGKILL left in state starting after GitHub issued its JIT config: the
// registration it left is removed and the same attempt registers again
// (a restart is not a host's failure and must not use up the job's
// attempts), unless its runner already took a job.
func TestRestartBetweenJITConfigAndDispatched(t *testing.T) {
	const name = "bf-linux-quick-100-1"
	for _, tc := range []struct {
		test     string
		runnerID int64 // recorded before the kill (0: the process died first)
		busy     bool
		// wantJIT is the number of JIT configs issued on resuming.
		wantJIT     int
		wantDeleted int
	}{
		{"id not recorded", 0, false, 1, 1},
		{"id recorded, secret maybe written", 41, false, 1, 1},
		{"runner took its job", 41, true, 0, 0},
	} {
		t.Run(tc.test, func(t *testing.T) {
			f, st, gh, nm := newTestFleet(t, 4)
			ourRequest(t, st, "dispatched", 7)
			ctx := context.Background()
			if _, err := st.CreateRunner(ctx, store.Runner{GitHubJobID: 100, Attempt: 1, RunID: 7, RequestID: "r1", Repo: "o/r",
				Pool: "linux-quick", RunnerName: name, RunnerID: tc.runnerID, NomadJobID: "child-0", State: StateStarting}); err != nil {
				t.Fatal(err)
			}
			gh.registered = []github.SelfHostedRunner{{ID: 41, Name: name, Status: "offline", Busy: tc.busy}}
			if err := f.HandleJob(ctx, delivery("d1", "queued", 100, 7, "")); err != nil {
				t.Fatalf("queued after the restart: %v", err)
			}
			r, err := st.LatestRunner(ctx, 100)
			if err != nil {
				t.Fatal(err)
			}
			if r.Attempt != 1 || r.State != StateDispatched {
				t.Errorf("attempt %d in state %s, want attempt 1 dispatched", r.Attempt, r.State)
			}
			if len(gh.jit) != tc.wantJIT || len(gh.deleted) != tc.wantDeleted {
				t.Errorf("%d JIT configs issued, registrations deleted %v; want %d and %d", len(gh.jit), gh.deleted, tc.wantJIT, tc.wantDeleted)
			}
			if len(nm.stopped) != 0 {
				t.Errorf("children stopped %v, want the attempt's child kept", nm.stopped)
			}
		})
	}
}
