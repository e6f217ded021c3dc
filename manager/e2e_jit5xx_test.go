package manager

import (
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/ghsim"
)

// TestJITConfig5xxSpendsNoAttempt: GitHub answers the first four JIT
// config requests with a 502. That is GitHub's trouble, not the runner's:
// the job keeps its first attempt, gets its runner once GitHub answers, and
// passes (before, three 502s in a row ended it as the fleet's error, "no
// runner started after 3 attempts").
func TestJITConfig5xxSpendsNoAttempt(t *testing.T) {
	pool := fleetPools()[0]
	h, _ := newFleetHarnessWith(t, fleetSetup{pools: []config.Pool{pool, fleetPools()[3]}})
	if err := h.gh.AddFault(ghsim.Fault{Kind: ghsim.FaultServerError, Path: `/generate-jitconfig$`, Count: 4, Status: 502}); err != nil {
		t.Fatal(err)
	}
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.waitFinal(1, 90*time.Second)
	if s := h.finalStatuses()["buildfleet/"+pool.Name]; s.State != "success" {
		t.Errorf("result %+v, want success", s)
	}
	for _, r := range h.runnerRows() {
		if r.Attempt != 1 {
			t.Errorf("attempt %d of job %d (%s): a GitHub 5xx spent a runner attempt", r.Attempt, r.GitHubJobID, r.State)
		}
	}
}
