package fleet

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/store"
)

// killTeller is fakeNomad that answers RunnerKilled.
type killTeller struct {
	*fakeNomad
	why     string
	running bool
	err     error
	asked   int
}

func (k *killTeller) RunnerKilled(context.Context, string) (string, bool, error) {
	k.asked++
	return k.why, k.running, k.err
}

// A runner its host killed mid-job reports the job failed as it goes
// (GitHub's runner does so on a shutdown signal): the fleet asks Nomad how
// the runner ended and reports its own error, not the PR's failure. A
// failure while Nomad cannot say, or while the task still runs, waits;
// a runner that exited by itself leaves the build's failure as it is.
func TestKilledRunnersFailureIsTheFleetsError(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kt      killTeller
		pending bool
		want    string
	}{
		{name: "killed", kt: killTeller{why: "task runner was killed by its host: Sent interrupt"},
			want: "buildfleet/linux-quick error the runner was lost: task runner was killed by its host: Sent interrupt"},
		{name: "nomad lost it", kt: killTeller{why: "its Nomad job is gone (Nomad lost it)"},
			want: "buildfleet/linux-quick error the runner was lost: its Nomad job is gone (Nomad lost it)"},
		{name: "exited by itself", kt: killTeller{}, want: "buildfleet/linux-quick failure build failure"},
		{name: "still running", kt: killTeller{running: true}, pending: true},
		{name: "nomad down", kt: killTeller{err: errors.New("connection refused")}, pending: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, st, gh, nm := newTestFleet(t, 1)
			kt := tc.kt
			kt.fakeNomad = nm
			f.nm = &kt
			ourRequest(t, st, "dispatched", 7)
			ctx := context.Background()
			for _, d := range []store.Delivery{
				delivery("d1", "queued", 100, 7, ""),
				delivery("d2", "in_progress", 100, 7, `,"runner_name":"bf-linux-quick-100-1"`),
			} {
				if err := f.HandleJob(ctx, d); err != nil {
					t.Fatal(err)
				}
			}
			err := f.HandleJob(ctx, delivery("d3", "completed", 100, 7, `,"conclusion":"failure"`))
			if tc.pending {
				if !errors.Is(err, errPending) || len(gh.statuses) != 1 {
					t.Fatalf("err %v, statuses %q: want the result to wait", err, gh.statuses)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := gh.statuses[len(gh.statuses)-1]; got != tc.want || kt.asked != 1 {
				t.Errorf("result %q after %d questions, want %q", got, kt.asked, tc.want)
			}
			if n, _ := st.ActiveRunners(ctx, "linux-quick", activeStates...); n != 0 {
				t.Errorf("%d active attempts, want the slot free", n)
			}
			// A success is never questioned.
			if err := f.HandleJob(ctx, delivery("d4", "completed", 101, 7, `,"conclusion":"success"`)); err != nil || kt.asked != 1 {
				t.Errorf("a success asked Nomad (%d, %v)", kt.asked, err)
			}
		})
	}
}

// jobLister answers a run's jobs and the run, as GitHub lists them.
type jobLister struct {
	jobs []github.Job
	run  github.Run
}

func (l *jobLister) RunJobs(context.Context, string, string, int64) ([]github.Job, error) {
	return l.jobs, nil
}

func (l *jobLister) GetRun(context.Context, string, string, int64) (github.Run, error) {
	return l.run, nil
}

// Reconciliation ends a completed run's request only once every job's
// result is applied: a job it could not apply yet (here: Nomad cannot say
// how its runner ended) keeps the run in flight, or nothing would look at
// that job again.
func TestReconcileKeepsARunWithAJobNotAppliedInFlight(t *testing.T) {
	f, st, gh, nm := newTestFleet(t, 1)
	kt := &killTeller{fakeNomad: nm, err: errors.New("connection refused")}
	f.nm = kt
	f.jobs = &jobLister{
		jobs: []github.Job{{ID: 100, RunID: 7, Name: "b", Labels: []string{bindingLabel}, Status: "completed", Conclusion: "failure"}},
		run:  github.Run{ID: 7, Status: "completed", Conclusion: "failure"},
	}
	ourRequest(t, st, "dispatched", 7)
	ctx := context.Background()
	for _, d := range []store.Delivery{
		delivery("d1", "queued", 100, 7, ""),
		delivery("d2", "in_progress", 100, 7, `,"runner_name":"bf-linux-quick-100-1"`),
	} {
		if err := f.HandleJob(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := st.Request(ctx, "r1")
	if _, err := f.reconcileRun(ctx, req, &liveSet{nm: kt}); err != nil {
		t.Fatal(err)
	}
	if req, _ = st.Request(ctx, "r1"); req.State != "dispatched" {
		t.Fatalf("request %s with its job's result not applied, want still dispatched", req.State)
	}
	kt.err = nil
	if _, err := f.reconcileRun(ctx, req, &liveSet{nm: kt}); err != nil {
		t.Fatal(err)
	}
	if req, _ = st.Request(ctx, "r1"); req.State != "done" {
		t.Errorf("request %s once its job is applied, want done", req.State)
	}
	if got := gh.statuses[len(gh.statuses)-1]; got != "buildfleet/linux-quick failure build failure" {
		t.Errorf("result %q, want the build's failure", got)
	}
}

// countingLister counts the runs it was asked about.
type countingLister struct {
	jobLister
	asked int
}

func (l *countingLister) RunJobs(ctx context.Context, o, r string, id int64) ([]github.Job, error) {
	l.asked++
	return l.jobLister.RunJobs(ctx, o, r, id)
}

// After a store outage every run in flight is checked at once, not when
// its quiet wait ends: its refused workflow_job webhooks are not resent.
func TestReconcileAllChecksQuietRunsAtOnce(t *testing.T) {
	f, st, _, _ := newTestFleet(t, 1)
	l := &countingLister{jobLister: jobLister{run: github.Run{ID: 7, Status: "in_progress"},
		jobs: []github.Job{{ID: 100, RunID: 7, Labels: []string{bindingLabel}, Status: "in_progress"}}}}
	f.jobs = l
	ourRequest(t, st, "dispatched", 7)
	ctx := context.Background()
	f.touch(7) // a webhook just came: the run is not due for a while
	f.reconcile(ctx)
	if l.asked != 0 {
		t.Fatalf("a run with a fresh webhook checked %d times", l.asked)
	}
	f.ReconcileAll()
	f.reconcile(ctx)
	if l.asked != 1 {
		t.Errorf("after ReconcileAll the run was checked %d times, want 1", l.asked)
	}
	f.reconcile(ctx)
	if l.asked != 1 {
		t.Errorf("ReconcileAll held for more than one pass (%d checks)", l.asked)
	}
}

// A runner that can no longer take its queued job is replaced when
// reconciliation sees the job still queued: its child exited without
// taking it (a stop signal while it waited), or Nomad lost the child (a
// restart without its state). A child still live and waiting is left.
func TestQueuedJobWhoseRunnerEndedGetsANewOne(t *testing.T) {
	for _, tc := range []struct {
		name    string
		state   string // the child's Nomad state as followed
		live    bool   // listed among Nomad's live children
		later   time.Duration
		replace bool
	}{
		{name: "exited without taking it", state: "complete", replace: true},
		{name: "gone from Nomad", state: "pending", later: time.Minute, replace: true},
		{name: "waiting", state: "running", live: true, later: time.Minute},
		{name: "just dispatched", state: "pending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, st, _, nm := newTestFleet(t, 1)
			f.jobs = &jobLister{run: github.Run{ID: 7, Status: "in_progress"},
				jobs: []github.Job{{ID: 100, RunID: 7, Labels: []string{bindingLabel}, Status: "queued"}}}
			ourRequest(t, st, "dispatched", 7)
			ctx := context.Background()
			if err := f.HandleJob(ctx, delivery("d1", "queued", 100, 7, "")); err != nil {
				t.Fatal(err)
			}
			r, _ := st.LatestRunner(ctx, 100)
			ns := tc.state
			if err := st.UpdateRunner(ctx, 100, 1, store.RunnerFields{NomadState: &ns}); err != nil {
				t.Fatal(err)
			}
			if tc.live {
				nm.live = []nomad.LiveRunner{{DispatchedJobID: r.NomadJobID, RunnerName: r.RunnerName, Pool: r.Pool}}
			}
			f.now = func() time.Time { return time.Now().Add(tc.later) }
			req, _ := st.Request(ctx, "r1")
			if _, err := f.reconcileRun(ctx, req, &liveSet{nm: nm}); err != nil {
				t.Fatal(err)
			}
			last, _ := st.LatestRunner(ctx, 100)
			if replaced := last.Attempt == 2; replaced != tc.replace {
				t.Errorf("latest attempt %d (%s), want replaced %v", last.Attempt, last.State, tc.replace)
			}
			if tc.replace && (len(nm.dispatched) != 2 || len(nm.stopped) == 0) {
				t.Errorf("dispatched %d, stopped %v: want the old child stopped and a new one", len(nm.dispatched), nm.stopped)
			}
		})
	}
}
