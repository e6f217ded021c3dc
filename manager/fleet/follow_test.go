package fleet

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/store"
)

// update is what Watch reports of a runner of the test fleet's one pool.
func update(name string, s nomad.State, why string, idx uint64) nomad.Update {
	return nomad.Update{RunnerName: name, Pool: "linux-quick", DispatchedJobID: "child-of-" + name, State: s, Reason: why, Index: idx}
}

// TestOtherPoolsLeftAlone: children of a pool this manager does not serve
// (another manager's, an operator's) are neither followed nor stopped.
func TestOtherPoolsLeftAlone(t *testing.T) {
	f, _, _, nm := newTestFleet(t, 2)
	ctx := context.Background()
	u := update("bf-other-1-1", nomad.StateRunning, "", 5)
	u.Pool = "someone-elses"
	f.follow(ctx, u)
	f.follow(ctx, update("bf-linux-quick-9-1", nomad.StateRunning, "", 6))
	if len(nm.stopped) != 1 || nm.stopped[0] != "child-of-bf-linux-quick-9-1" {
		t.Errorf("stopped %v; want only the unknown child of our own pool", nm.stopped)
	}
}

func TestFailedAllocationsGetNewAttemptsThenError(t *testing.T) {
	ctx := context.Background()
	f, st, gh, nm := newTestFleet(t, 4)
	ourRequest(t, st, "dispatched", 7)
	if err := f.HandleJob(ctx, delivery("d1", "queued", 100, 7, "")); err != nil {
		t.Fatal(err)
	}
	for a := 1; a <= maxAttempts; a++ {
		name := fmt.Sprintf("bf-linux-quick-100-%d", a)
		f.follow(ctx, update(name, nomad.StatePlaced, "", uint64(10*a)))
		f.follow(ctx, update(name, nomad.StateFailed, "task runner: exit 1", uint64(10*a+1)))
		r, _ := st.Runner(ctx, 100, a)
		if (r.State != StateReplaced && r.State != StateGaveUp) || r.NomadState != "failed" || r.NomadReason != "task runner: exit 1" {
			t.Errorf("attempt %d row %+v", a, r)
		}
	}
	if len(gh.jit) != maxAttempts || len(nm.dispatched) != maxAttempts {
		t.Errorf("JIT configs %v, dispatched %d; want %d attempts", gh.jit, len(nm.dispatched), maxAttempts)
	}
	if len(gh.deleted) != maxAttempts {
		t.Errorf("registrations deleted %v, want each failed attempt's", gh.deleted)
	}
	want := []string{"buildfleet/linux-quick error the fleet could not start a runner: task runner: exit 1"}
	if fmt.Sprint(gh.statuses) != fmt.Sprint(want) {
		t.Errorf("statuses %q, want %q", gh.statuses, want)
	}
	if r, _ := st.LatestRunner(ctx, 100); r.State != StateGaveUp {
		t.Errorf("last attempt %+v, want gave_up", r)
	}
	if v, _ := st.GetKV(ctx, kvNomadIndex); v != fmt.Sprint(10*maxAttempts+1) {
		t.Errorf("saved index %q", v)
	}
}

func TestRunningDeletesSecretAndInProgressIsNotRetried(t *testing.T) {
	ctx := context.Background()
	f, st, gh, nm := newTestFleet(t, 4)
	ourRequest(t, st, "dispatched", 7)
	_ = f.HandleJob(ctx, delivery("d1", "queued", 100, 7, ""))
	f.follow(ctx, update("bf-linux-quick-100-1", nomad.StateRunning, "", 5))
	if fmt.Sprint(nm.secretsDeleted) != "[bf-linux-quick-100-1]" {
		t.Errorf("secrets deleted %v, want the running runner's", nm.secretsDeleted)
	}
	_ = f.HandleJob(ctx, delivery("d2", "in_progress", 100, 7, `,"runner_name":"bf-linux-quick-100-1"`))
	f.follow(ctx, update("bf-linux-quick-100-1", nomad.StateFailed, "exit 1", 6))
	if len(gh.jit) != 1 {
		t.Errorf("JIT configs %v: a runner that took its job is not replaced", gh.jit)
	}
	// A child we have no record of is stopped.
	u := update("bf-unknown", nomad.StatePending, "", 7)
	u.DispatchedJobID = "stray"
	f.follow(ctx, u)
	if fmt.Sprint(nm.stopped) != "[stray]" {
		t.Errorf("stopped %v, want the stray child", nm.stopped)
	}
}

func TestWaitingForAHostReportedOnce(t *testing.T) {
	ctx := context.Background()
	f, st, gh, nm := newTestFleet(t, 4)
	now := time.Now()
	f.now = func() time.Time { return now }
	f.waitingAfter = time.Second
	ourRequest(t, st, "dispatched", 7)
	_ = f.HandleJob(ctx, delivery("d1", "queued", 100, 7, ""))
	f.follow(ctx, update("bf-linux-quick-100-1", nomad.StateBlocked, "no eligible host: 1 node ineligible", 5))
	f.sweep(ctx)
	if len(gh.statuses) != 0 {
		t.Fatalf("statuses %v before the threshold", gh.statuses)
	}
	now = now.Add(2 * time.Second)
	f.sweep(ctx)
	f.sweep(ctx)
	want := []string{"buildfleet/linux-quick pending queued: no eligible host in linux-quick: no eligible host: 1 node ineligible"}
	if fmt.Sprint(gh.statuses) != fmt.Sprint(want) {
		t.Fatalf("statuses %q, want %q", gh.statuses, want)
	}
	f.follow(ctx, update("bf-linux-quick-100-1", nomad.StatePlaced, "", 6))
	f.follow(ctx, update("bf-linux-quick-100-1", nomad.StateRunning, "", 7))
	f.sweep(ctx)
	_ = f.HandleJob(ctx, delivery("d2", "in_progress", 100, 7, `,"runner_name":"bf-linux-quick-100-1"`))
	_ = f.HandleJob(ctx, delivery("d2", "in_progress", 100, 7, `,"runner_name":"bf-linux-quick-100-1"`))
	if len(gh.statuses) != 2 || !strings.HasSuffix(gh.statuses[1], "running on bf-linux-quick-100-1") {
		t.Errorf("statuses %q, want waiting then running once", gh.statuses)
	}
	_ = nm
}

func TestCancelledRunReleasesPendingRunners(t *testing.T) {
	ctx := context.Background()
	f, st, gh, nm := newTestFleet(t, 4)
	ourRequest(t, st, "dispatched", 7)
	_ = f.HandleJob(ctx, delivery("d1", "queued", 100, 7, ""))
	_ = f.HandleJob(ctx, delivery("d2", "queued", 101, 7, ""))
	_ = f.HandleJob(ctx, delivery("d3", "in_progress", 101, 7, `,"runner_name":"bf-linux-quick-101-1"`))
	err := f.HandleRun(ctx, store.Delivery{ID: "d4", Event: "workflow_run",
		Payload: []byte(`{"action":"completed","workflow_run":{"id":7,"conclusion":"cancelled"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(nm.stopped) != "[child-1]" || fmt.Sprint(gh.deleted) != "[1]" {
		t.Errorf("stopped %v, registrations deleted %v; want only the pending runner's", nm.stopped, gh.deleted)
	}
	r, _ := st.LatestRunner(ctx, 100)
	if r.State != StateCompleted || r.Conclusion != "cancelled" {
		t.Errorf("row %+v", r)
	}
	// The job's own completed event still reports it.
	_ = f.HandleJob(ctx, delivery("d5", "completed", 100, 7, `,"conclusion":"cancelled"`))
	if last := gh.statuses[len(gh.statuses)-1]; last != "buildfleet/linux-quick error cancelled" {
		t.Errorf("last status %q", last)
	}
}

func TestJobTakenByAnotherJobsRunner(t *testing.T) {
	ctx := context.Background()
	f, st, gh, _ := newTestFleet(t, 4)
	ourRequest(t, st, "dispatched", 7)
	_ = f.HandleJob(ctx, delivery("d1", "queued", 100, 7, ""))
	_ = f.HandleJob(ctx, delivery("d2", "queued", 101, 7, ""))
	// Job 100 runs on job 101's runner.
	if err := f.HandleJob(ctx, delivery("d3", "in_progress", 100, 7, `,"runner_name":"bf-linux-quick-101-1"`)); err != nil {
		t.Fatal(err)
	}
	a, _ := st.LatestRunner(ctx, 100)
	if a.State != StateRunning || a.TakenBy != "bf-linux-quick-101-1" {
		t.Errorf("job 100 row %+v", a)
	}
	b, _ := st.LatestRunner(ctx, 101)
	if b.Attempt != 2 || b.State != StateDispatched {
		t.Errorf("job 101 latest %+v, want a second attempt dispatched", b)
	}
	if len(gh.jit) != 3 {
		t.Errorf("JIT configs %v", gh.jit)
	}
}

func TestOrphansRemoved(t *testing.T) {
	ctx := context.Background()
	f, st, gh, nm := newTestFleet(t, 4)
	f.cfg.Repositories = append(f.cfg.Repositories, config.Repository{Name: "o/r"})
	ourRequest(t, st, "dispatched", 7)
	_ = f.HandleJob(ctx, delivery("d1", "queued", 100, 7, ""))
	gh.registered = []github.SelfHostedRunner{
		{ID: 1, Name: "bf-linux-quick-100-1", Status: "offline"}, // active: kept
		{ID: 50, Name: "bf-old-1", Status: "offline"},            // dead: deleted
		{ID: 51, Name: "bf-busy-1", Status: "online", Busy: true},
		{ID: 52, Name: "someone-else", Status: "offline"},
	}
	nm.live = []nomad.LiveRunner{
		{DispatchedJobID: "child-1", RunnerName: "bf-linux-quick-100-1", Pool: "linux-quick"},
		{DispatchedJobID: "child-x", RunnerName: "bf-gone-1", Pool: "linux-quick"},
		{DispatchedJobID: "child-busy", RunnerName: "bf-busy-1", Pool: "linux-quick"},
		{DispatchedJobID: "child-elsewhere", RunnerName: "bf-theirs-1", Pool: "another-managers"},
	}
	f.orphans(ctx)
	if len(gh.deleted)+len(nm.stopped) != 0 {
		t.Fatalf("a sweep with no change since the last one acted: %v %v", gh.deleted, nm.stopped)
	}
	f.changed = true
	f.orphans(ctx)
	if fmt.Sprint(gh.deleted) != "[50]" || fmt.Sprint(nm.stopped) != "[child-x]" {
		t.Errorf("deleted %v, stopped %v", gh.deleted, nm.stopped)
	}
}
