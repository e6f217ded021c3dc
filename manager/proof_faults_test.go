package manager

import (
	"context"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/internal/nomadtest"
)

// The reliability suite's infrastructure faults: the Nomad agent restarts
// with its state lost, and the store's disk fills and is freed, each while
// the burst drains.
func init() {
	proofScenarios = append(proofScenarios,
		proofScenario{name: "nomad", setup: nomadSetup, during: restartNomadMidBurst},
	)
}

// nomadSetup makes jobs last long enough for the restart to catch runners
// mid-job, and ghsim give up on a silent runner within the drain (GitHub
// fails a job whose runner stopped talking; its default here is minutes).
func nomadSetup(s *fleetSetup) {
	s.ghsim.JobDuration = 5 * time.Second
	s.ghsim.RunnerLostAfter = 10 * time.Second
}

// restartNomadMidBurst restarts the Nomad agent with an empty data dir once
// a runner runs its job: the pool jobs, the children (running or waiting
// for a host) and the JIT variables are gone, and the runners are stopped.
// The manager must register the pools again and end every job with one
// result — a new runner's, or the fleet's error — never the PR's failure.
func restartNomadMidBurst(t *testing.T, h *harness, ag *nomadtest.Agent) {
	if !waitUntil(60*time.Second, func() bool {
		rs, _ := h.m.store.RunnersInState(context.Background(), "running")
		return len(rs) > 0
	}) {
		t.Errorf("no runner ran a job within a minute: Nomad not restarted")
		return
	}
	t.Logf("restarting the Nomad agent, losing its state")
	if err := ag.RestartLosingState(); err != nil {
		t.Errorf("restarting Nomad: %v", err)
		return
	}
	// The drain waits for this: every builder's result, none the PR's
	// failure (the workflow's steps all pass).
	var reqs []string
	waitUntil(90*time.Second, func() bool {
		rs, _ := h.m.store.ListRequests(context.Background(), 1000)
		reqs = reqs[:0]
		for _, r := range rs {
			if r.State != "done" {
				return false
			}
			reqs = append(reqs, r.SHA)
		}
		return len(rs) > 0
	})
	for _, sha := range reqs {
		for _, s := range h.statuses(sha) {
			if s.State == "failure" {
				t.Errorf("%s on %s: %s %q: a runner Nomad stopped is the fleet's error, not the PR's failure", s.Context, sha[:8], s.State, s.Description)
			}
		}
	}
	for _, p := range h.cfg.Pools {
		if _, _, err := ag.Client.Jobs().Info("runner-"+p.Name, nil); err != nil {
			t.Errorf("pool job of %s not registered again after Nomad lost it: %v", p.Name, err)
		}
	}
}

// waitUntil polls cond until it holds or within has passed; it reports
// whether cond held. (eventually fails the test, which only the test's own
// goroutine may do.)
func waitUntil(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}
