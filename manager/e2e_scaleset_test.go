package manager

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/ghsim"
	"github.com/buildfleet/buildfleet/manager/store"
)

// scaleSetPools are fleetPools with the debug and asan pools fed by runner
// scale sets and the plain one by webhooks: one request spans both kinds.
func scaleSetPools() []config.Pool {
	ps := fleetPools()
	for _, i := range []int{1, 2} {
		ps[i].Source = config.SourceScaleSet
	}
	return ps
}

// jobsOfRun are the jobs of the harness's only run, as ghsim has them.
func (h *harness) jobsOfRun() []ghJob {
	runs := h.runs()
	if len(runs) != 1 {
		h.t.Fatalf("%d runs, want 1", len(runs))
	}
	b, _ := json.Marshal(runs[0]["jobs"])
	var jobs []ghJob
	if err := json.Unmarshal(b, &jobs); err != nil {
		h.t.Fatal(err)
	}
	return jobs
}

// TestScaleSetPoolsReportLikeWebhookPools runs the labelled-PR scenario
// with two of three builders in scale-set mode: each builder's result on
// the PR has the same shape, whichever source its pool has.
func TestScaleSetPoolsReportLikeWebhookPools(t *testing.T) {
	h, ag := newFleetHarnessWith(t, fleetSetup{pools: scaleSetPools()})
	allocs := allocWatcher(t, ag)
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.waitFinal(3, 90*time.Second)
	final := h.finalStatuses()
	for _, p := range h.cfg.Pools[:3] {
		s := final["buildfleet/"+p.Name]
		// "build success in 2s": the same words, whatever the duration.
		same := func(d string) string { w, _, _ := strings.Cut(d, " in "); return w }
		if s.State != "success" || same(s.Description) != same(final["buildfleet/"+h.cfg.Pools[0].Name].Description) ||
			!strings.HasPrefix(s.Description, "build success") || !strings.Contains(s.TargetURL, "/job/") {
			t.Errorf("status of %s (%s) = %+v, want success like the webhook pool's %+v", p.Name, p.Source, s, final["buildfleet/"+h.cfg.Pools[0].Name])
		}
	}
	for _, j := range h.jobsOfRun() {
		if j.Conclusion != "success" || !strings.HasPrefix(j.RunnerName, "bf-") {
			t.Errorf("job %+v, want success on a bf- runner", j)
		}
	}
	if a := allocs(); len(a) != 3 {
		t.Errorf("allocations %v, want one per builder", a)
	}
	// The webhook pool's runner came from the REST JIT endpoint, the
	// others' through their scale sets.
	if n := h.calls("POST", "/generate-jitconfig"); n != 1 {
		t.Errorf("%d REST JIT configs, want 1 (the webhook pool's)", n)
	}
	rs := h.runnerRows()
	if len(rs) != 3 {
		t.Fatalf("runner rows %+v, want 3", rs)
	}
	for _, r := range rs {
		if r.State != "completed" || r.Conclusion != "success" {
			t.Errorf("runner row %+v", r)
		}
	}
	if logs := h.logs.String(); strings.Contains(logs, "eyJ") {
		t.Errorf("manager log holds a JIT config:\n%s", logs)
	}
	// Shutdown deletes the sessions.
	h.stop()
	for _, p := range h.cfg.Pools[1:3] {
		id := h.gh.ScaleSetByName(e2eRepo, p.ScaleSet.Name)
		if id == 0 {
			t.Errorf("no scale set %s", p.ScaleSet.Name)
		} else if s := h.gh.ScaleSetSession(id); s != "" {
			t.Errorf("scale set %s keeps session %s after shutdown", p.ScaleSet.Name, s)
		}
	}
}

// TestScaleSetManagerDownLosesNoJob stops the manager after it dispatched
// the run and before its listener saw the job, leaves a stale session
// behind (as a crash would), and starts it again: the job waited in the
// scale set's queue, and exactly one runner takes it.
func TestScaleSetManagerDownLosesNoJob(t *testing.T) {
	pools := []config.Pool{scaleSetPools()[1], fleetPools()[3]}
	h, _ := newFleetHarnessWith(t, fleetSetup{pools: pools})
	// The listener's polls hang: the job message is not read before the
	// stop.
	hang := ghsim.Fault{Kind: ghsim.FaultLatency, Service: true, Path: "/_queue/", Latency: "60s"}
	if err := h.gh.AddFault(hang); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the scale set listening", func() bool {
		id := h.gh.ScaleSetByName(e2eRepo, pools[0].ScaleSet.Name)
		return id != 0 && h.gh.ScaleSetSession(id) != ""
	})
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the run dispatched", func() bool {
		reqs, _ := h.m.store.ListRequests(context.Background(), 1)
		return len(reqs) == 1 && reqs[0].RunID != 0
	})
	h.stop()
	if rs := h.runnerRows(); len(rs) != 0 {
		t.Fatalf("a runner was started before the stop: %+v", rs)
	}
	// A crashed manager would have left its session open, its id in the
	// store: open one as it would have, and keep its id.
	setID := h.gh.ScaleSetByName(e2eRepo, pools[0].ScaleSet.Name)
	stale := h.openStaleSession(t, setID)
	h.gh.ClearFaults()

	h.start()
	h.waitFinal(1, 60*time.Second)
	if s := h.finalStatuses()["buildfleet/"+pools[0].Name]; s.State != "success" {
		t.Errorf("final status %+v, want success", s)
	}
	rs := h.runnerRows()
	if len(rs) != 1 || rs[0].State != "completed" || rs[0].Conclusion != "success" {
		t.Errorf("runner rows %+v, want one attempt, completed", rs)
	}
	jobs := h.jobsOfRun()
	if len(jobs) != 1 || jobs[0].Conclusion != "success" || len(rs) == 1 && jobs[0].RunnerName != rs[0].RunnerName {
		t.Errorf("jobs %+v, want the one job taken by runner %+v", jobs, rs)
	}
	if s := h.gh.ScaleSetSession(setID); s == "" || s == stale {
		t.Errorf("session %q: want a new one in place of the stale %s", s, stale)
	}
}

// openStaleSession opens a message session on the set as a manager that
// then crashed would have, and writes its id where the manager keeps it.
func (h *harness) openStaleSession(t *testing.T, setID int) string {
	t.Helper()
	id, err := h.gh.OpenScaleSetSession(setID, "crashed-manager")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), h.cfg.Store.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.PutKV(context.Background(), "scaleset.session."+itoa(setID), id); err != nil {
		t.Fatal(err)
	}
	return id
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestScaleSetManagerStoppedMidRun stops the manager once its runner is
// dispatched; the job starts and ends while nobody listens (the session
// is gone, and with it the messages), and the restarted manager still
// reports it, with no second runner.
func TestScaleSetManagerStoppedMidRun(t *testing.T) {
	pools := []config.Pool{scaleSetPools()[1], fleetPools()[3]}
	// The runner waits before it asks for its job: the manager is stopped
	// in between, and started again only once the job is done.
	script := "sleep 2\nexec \"$GHSIM\" runner --jitconfig-file \"$JIT_CONFIG_FILE\"\n"
	h, _ := newFleetHarnessWith(t, fleetSetup{script: script, pools: pools})
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the runner dispatched", func() bool {
		rs := h.runnerRows()
		return len(rs) == 1 && rs[0].NomadJobID != "" && rs[0].State == "dispatched"
	})
	h.stop()
	deadline := time.Now().Add(60 * time.Second)
	for jobs := h.jobsOfRun(); len(jobs) != 1 || jobs[0].Status != "completed"; jobs = h.jobsOfRun() {
		if time.Now().After(deadline) {
			t.Fatalf("the job did not complete while the manager was down: %+v", jobs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.start()
	h.waitFinal(1, 60*time.Second)
	if s := h.finalStatuses()["buildfleet/"+pools[0].Name]; s.State != "success" {
		t.Errorf("final status %+v, want success", s)
	}
	rs := h.runnerRows()
	if len(rs) != 1 || rs[0].State != "completed" || rs[0].Conclusion != "success" {
		t.Errorf("runner rows %+v, want the one attempt completed", rs)
	}
}

// TestActRunnerScaleSetPoolsSameResults is TestActRunnerFailingStepFailsOnPR
// with two of its three pools fed by scale sets: github-act-runner, JIT
// configs generated through the sets, and the same results and logs on the
// PR as in webhook mode.
func TestActRunnerScaleSetPoolsSameResults(t *testing.T) {
	pools := scaleSetPools()
	pools[1].Name, pools[1].ScaleSet = "linux-broken-quick", config.ScaleSet{}
	setup, _ := actRunnerSetup(t, pools)
	h, _ := newFleetHarnessWith(t, setup)
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.waitFinal(3, 2*time.Minute)
	want := map[string]string{"linux-quick": "success", "linux-broken-quick": "failure", "linux-asan-quick": "success"}
	for pool, state := range want {
		s, ok := h.finalStatuses()["buildfleet/"+pool]
		if !ok || s.State != state {
			t.Errorf("status of %s = %+v, want %s", pool, s, state)
			continue
		}
		page := h.page(s.TargetURL + "?raw=1")
		wantLine := "built and tested " + h.sha + " on " + pool
		if state == "failure" {
			wantLine = "the build on " + pool + " failed (on purpose)"
		}
		if !strings.Contains(page, "Runner OSDescription: github-act-runner") || !strings.Contains(page, wantLine) {
			t.Errorf("log page of %s lacks the real runner's lines (%q):\n%s", pool, wantLine, page)
		}
	}
	if n := h.calls("POST", "/generate-jitconfig"); n != 1 {
		t.Errorf("%d REST JIT configs, want 1 (the webhook pool's)", n)
	}
}
