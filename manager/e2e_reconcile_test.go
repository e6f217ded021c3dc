package manager

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/ghsim"
)

// quickBuilders are the quick pools of fleetPools: the builders a label
// starts.
func quickBuilders() []config.Pool {
	var out []config.Pool
	for _, p := range fleetPools() {
		if p.Tier == config.TierQuick {
			out = append(out, p)
		}
	}
	return out
}

// TestLostJobWebhooksAreReconciled: with every workflow_job and
// workflow_run webhook dropped, the manager still starts a runner for
// each job (it lists its run's jobs), reports each result and ends the
// request.
func TestLostJobWebhooksAreReconciled(t *testing.T) {
	h, _ := newFleetHarnessWith(t, fleetSetup{reconcileEvery: 300 * time.Millisecond})
	for _, ev := range []string{"workflow_job", "workflow_run"} {
		if err := h.gh.AddFault(ghsim.Fault{Kind: ghsim.FaultDrop, Event: ev}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	n := len(quickBuilders())
	h.waitFinal(n, 90*time.Second)
	for c, s := range h.finalStatuses() {
		if s.State != "success" {
			t.Errorf("%s: %+v, want success", c, s)
		}
	}
	if got := h.calls("POST", "/generate-jitconfig"); got != n {
		t.Errorf("%d JIT configs, want %d (one runner per job)", got, n)
	}
	eventually(t, "the request done", func() bool {
		reqs, _ := h.m.store.ListRequests(context.Background(), 1)
		return len(reqs) == 1 && reqs[0].State == "done"
	})
	if strings.Count(h.logs.String(), "a queued job we had not heard of") != n {
		t.Errorf("want %d jobs started by reconciliation; log:\n%s", n, h.logs.String())
	}
}

// killAfterTaking runs ghsim's runner and kills it (SIGKILL, exit 137)
// once it has taken its job: its work folder appears only then.
const killAfterTaking = `w="$(mktemp -d)/w"
"$GHSIM" runner --work-dir "$w" &
pid=$!
while [ ! -d "$w" ]; do sleep 0.05; done
kill -9 "$pid"
exit 137
`

// TestRunnerKilledMidJobIsTheFleetsError: a runner killed while it runs
// its job is reported as the fleet's error, not the PR's failure, and its
// attempt does not stay running (its slot frees).
func TestRunnerKilledMidJobIsTheFleetsError(t *testing.T) {
	pool := fleetPools()[0]
	pool.MaxRunners = 1
	h, _ := newFleetHarnessWith(t, fleetSetup{script: killAfterTaking, pools: []config.Pool{pool, fleetPools()[3]},
		reconcileEvery: 300 * time.Millisecond})
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.waitFinal(1, 60*time.Second)
	s := h.finalStatuses()["buildfleet/"+pool.Name]
	if s.State != "error" || !strings.Contains(s.Description, "runner was lost") || !strings.Contains(s.Description, "137") {
		t.Errorf("status %+v, want the fleet's error naming exit 137", s)
	}
	rs := h.runnerRows()
	if len(rs) != 1 || rs[0].State != "lost" {
		t.Fatalf("rows %+v, want the one attempt lost", rs)
	}
	active, err := h.m.store.ActiveRunners(context.Background(), pool.Name, "starting", "dispatched", "running")
	if err != nil || active != 0 {
		t.Errorf("%d attempts still hold a slot (%v)", active, err)
	}
	// Its registration stays while GitHub thinks it busy with the job;
	// GitHub fails the job when the runner stays silent, and the orphan
	// sweep removes the registration once it is idle.
}

// TestNomadLosingItsStateIsRiddenOut: Nomad restarts with its state lost
// while runners wait for their jobs; the manager registers the pool jobs
// again and starts new runners, and every job gets its result.
func TestNomadLosingItsStateIsRiddenOut(t *testing.T) {
	// Runners that never take a job until a marker file exists.
	gate := filepath.Join(runnerDir(t, 0o755), "open")
	script := `while [ ! -e "` + gate + `" ]; do sleep 0.1; done
exec "$GHSIM" runner
`
	pool := fleetPools()[0]
	h, ag := newFleetHarnessWith(t, fleetSetup{script: script, pools: []config.Pool{pool, fleetPools()[3]},
		reconcileEvery: 300 * time.Millisecond})
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the runner running on Nomad", func() bool {
		rs := h.runnerRows()
		return len(rs) == 1 && rs[0].NomadState == "running"
	})
	if err := ag.RestartLosingState(); err != nil {
		t.Fatal(err)
	}
	if err := touch(gate); err != nil {
		t.Fatal(err)
	}
	h.waitFinal(1, 90*time.Second)
	if s := h.finalStatuses()["buildfleet/"+pool.Name]; s.State != "success" {
		t.Errorf("status %+v, want success on a runner started after Nomad came back", s)
	}
	if !strings.Contains(h.logs.String(), "registering it again") {
		t.Errorf("the pool job was not registered again; log:\n%s", h.logs.String())
	}
	rs := h.runnerRows()
	if len(rs) < 2 || rs[len(rs)-1].State != "completed" {
		t.Errorf("rows %+v, want a later attempt completed", rs)
	}
}

func touch(path string) error { return os.WriteFile(path, nil, 0o644) }

// TestDroppedJobCompletionSettledWithTheRun: every workflow_job
// "completed" webhook is lost while the run's own completed webhook
// arrives, and reconciliation is an hour away. The run's completion makes
// the manager ask GitHub for the jobs the run has no final result of, so
// each builder is reported and the request ends with its outcome (before,
// the run's webhook ended the request and no result ever came).
func TestDroppedJobCompletionSettledWithTheRun(t *testing.T) {
	h, _ := newFleetHarnessWith(t, fleetSetup{reconcileEvery: time.Hour})
	if err := h.gh.AddFault(ghsim.Fault{Kind: ghsim.FaultDrop, Event: "workflow_job", Action: "completed"}); err != nil {
		t.Fatal(err)
	}
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.waitFinal(len(quickBuilders()), 90*time.Second)
	for c, s := range h.finalStatuses() {
		if s.State != "success" {
			t.Errorf("%s: %+v, want success", c, s)
		}
	}
	eventually(t, "the request done with its outcome", func() bool {
		reqs, _ := h.m.store.ListRequests(context.Background(), 1)
		return len(reqs) == 1 && reqs[0].State == "done" && reqs[0].Reason == "succeeded"
	})
}
