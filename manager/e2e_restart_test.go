package manager

import (
	"context"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
)

// TestManagerRestartMidBuild stops the manager while its runner is placed
// on Nomad but has not taken its job yet, and starts it again on the same
// store: the new manager resumes the Nomad watch and the queue, starts no
// second runner, and reports the build's result.
func TestManagerRestartMidBuild(t *testing.T) {
	pools := []config.Pool{fleetPools()[0], fleetPools()[3]}
	// The runner waits two seconds before it asks for its job: the manager
	// is restarted in between.
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
	time.Sleep(300 * time.Millisecond) // events happen while nobody listens
	h.start()

	h.waitFinal(1, 60*time.Second)
	if s := h.finalStatuses()["buildfleet/"+pools[0].Name]; s.State != "success" {
		t.Errorf("final status %+v, want success", s)
	}
	if n := h.calls("POST", "/generate-jitconfig"); n != 1 {
		t.Errorf("%d JIT configs, want 1: the restart must not start a second runner", n)
	}
	rs := h.runnerRows()
	if len(rs) != 1 || rs[0].State != "completed" || rs[0].Conclusion != "success" {
		t.Errorf("runner rows %+v, want the one attempt completed", rs)
	}
	eventually(t, "the request done", func() bool {
		reqs, _ := h.m.store.ListRequests(context.Background(), 1)
		return len(reqs) == 1 && reqs[0].State == "done"
	})
}
