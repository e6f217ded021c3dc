package manager

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/nomadtest"
	"github.com/buildfleet/buildfleet/internal/testenv"
)

// The reliability suite's infrastructure faults: the Nomad agent restarts
// with its state lost, and the store's disk fills and is freed, each while
// the burst drains.
func init() {
	proofScenarios = append(proofScenarios,
		proofScenario{name: "nomad", setup: nomadSetup, during: restartNomadMidBurst},
		proofScenario{name: "disk", setup: disk.setup, before: disk.fill, during: disk.outages},
	)
}

// nomadSetup makes jobs last long enough for the restart to catch runners
// mid-job, and ghsim give up on a silent runner within the drain (GitHub
// fails a job whose runner stopped talking; its default here is minutes).
func nomadSetup(_ *testing.T, s *fleetSetup) {
	s.ghsim.JobDuration = 3 * time.Second
	s.ghsim.RunnerLostAfter = 10 * time.Second
}

// restartNomadMidBurst restarts the Nomad agent with an empty data dir once
// a runner runs its job: the pool jobs, the children (running or waiting
// for a host) and the JIT variables are gone, and the runners are stopped.
// The manager must register the pools again and end every job with one
// result — a new runner's, or the fleet's error — never the PR's failure.
func restartNomadMidBurst(t *testing.T, h *harness, ag *nomadtest.Agent) {
	// GitHub's write budget paces a large burst: the first runner may
	// take minutes.
	if !waitUntil(t, 5*time.Minute, func() bool {
		rs, _ := h.m.store.RunnersInState(context.Background(), "running")
		return len(rs) > 0
	}) {
		t.Errorf("no runner ran a job within 5 minutes: Nomad not restarted")
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
	waitUntil(t, 300*time.Second, func() bool {
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
	// The pools come back even when no runner needed one since (all
	// jobs ended as the fleet's error): the watch reconnects with backoff.
	var missing []string
	if !waitUntil(t, 60*time.Second, func() bool {
		missing = missing[:0]
		for _, p := range h.cfg.Pools {
			if _, _, err := ag.Client.Jobs().Info("runner-"+p.Name, nil); err != nil {
				missing = append(missing, p.Name)
			}
		}
		return len(missing) == 0
	}) {
		t.Errorf("pool jobs of %v not registered again after Nomad lost them", missing)
	}
}

// waitUntil polls cond until it holds or within has passed; it reports
// whether cond held. (eventually fails the test, which only the test's own
// goroutine may do.) Once the test has ended (the drain gave up on a
// scenario still waiting here), it ends the calling goroutine, which may
// no longer report anything.
func waitUntil(t *testing.T, within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if t.Context().Err() != nil {
			runtime.Goexit()
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// disk is the "disk" scenario: the store lives on a small tmpfs that fills
// twice while the burst drains. GitHub does not redeliver a webhook answered
// with a 5xx, so what the outages refuse must be found again by the manager
// itself: the labels by the label scan that follows the outage, the
// workflow_job events by job reconciliation.
var disk = &diskOutage{}

type diskOutage struct {
	dir string
	// clk is GitHub's clock, a little behind the manager's, so that the
	// harness can space a push and the labels in GitHub's time.
	clk *ghClock
}

func (d *diskOutage) filler() string { return filepath.Join(d.dir, "filler") }

func (d *diskOutage) setup(t *testing.T, s *fleetSetup) {
	d.dir = testenv.SmallDisk(t, "64m")
	prev := s.configure
	s.configure = func(c *config.Config) {
		if prev != nil {
			prev(c)
		}
		c.Store.Path = filepath.Join(d.dir, "buildfleet.db")
	}
	// Jobs run long enough for the second outage to catch them running.
	s.ghsim.JobDuration = 3 * time.Second
	d.clk = newGHClock()
	d.clk.add(10*time.Minute - 5*time.Second)
	s.ghsim.Now = d.clk.now
}

// fill fills the disk before the labels come: every labeled webhook gets
// a 503. The manager has seen every PR before (the label scan builds the
// head it saw when the label was added): the PRs opened after the hook
// was added were delivered, and the harness's first PR, opened before,
// shows its head by a push of the same commit.
func (d *diskOutage) fill(t *testing.T, h *harness, _ *nomadtest.Agent) {
	if err := h.gh.PushPR(e2eRepo, h.pr, h.sha); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(t, 60*time.Second, func() bool {
		kept := map[string]int{}
		for _, dl := range h.gh.Deliveries() {
			if dl.Event == "pull_request" && dl.StatusCode/100 == 2 {
				kept[dl.Action]++
			}
		}
		return kept["synchronize"] == 1 && kept["opened"] == labelCandidates(t, h)-1
	}) {
		t.Fatal("the PRs' webhooks were not delivered before the outage")
	}
	// The push came well before the labels (the scan refuses a label
	// within seconds of a push: it could not tell which commit it saw).
	d.clk.add(3 * time.Second)
	if err := testenv.FillDisk(d.filler()); err != nil {
		t.Fatal(err)
	}
}

// outages holds the first outage until every label was refused and frees
// the disk; then fills it again once a runner runs its job, until a
// completed webhook was refused, and frees it again.
func (d *diskOutage) outages(t *testing.T, h *harness, _ *nomadtest.Agent) {
	count := func(event, action string, status int) int {
		c := 0
		for _, dl := range h.gh.Deliveries() {
			if dl.Event == event && dl.Action == action && (status == 0 || dl.StatusCode == status) {
				c++
			}
		}
		return c
	}
	refused := func(event, action string) int { return count(event, action, http.StatusServiceUnavailable) }
	n := count("pull_request", "opened", 0) // the labelled PRs, opened while the manager listened
	// Bounds grow with the burst: GitHub's write budget paces it.
	per := time.Duration(n) * time.Second
	// A full disk refuses most writes, not all: SQLite reuses the free
	// pages it has, so some labels may still be kept, and handled at once.
	if !waitUntil(t, 60*time.Second+per, func() bool { return count("pull_request", "labeled", 0) >= n }) {
		t.Errorf("%d of %d labeled webhooks sent", count("pull_request", "labeled", 0), n)
	}
	if refused("pull_request", "labeled") == 0 {
		t.Errorf("no labeled webhook refused with the disk full")
	}
	time.Sleep(2 * time.Second) // the outage lasts a little longer
	if err := os.Remove(d.filler()); err != nil {
		t.Errorf("freeing the disk: %v", err)
		return
	}
	t.Logf("disk freed: %d labeled webhooks were refused", refused("pull_request", "labeled"))

	if !waitUntil(t, 120*time.Second+per, func() bool {
		rs, _ := h.m.store.RunnersInState(context.Background(), "running")
		return len(rs) > 0
	}) {
		t.Errorf("no runner ran a job within 2 minutes of the first outage")
		return
	}
	if err := testenv.FillDisk(d.filler()); err != nil {
		t.Errorf("filling the disk again: %v", err)
		return
	}
	if !waitUntil(t, 60*time.Second, func() bool { return refused("workflow_job", "completed") > 0 }) {
		t.Errorf("no completed webhook refused while the disk was full")
	}
	time.Sleep(2 * time.Second)
	if err := os.Remove(d.filler()); err != nil {
		t.Errorf("freeing the disk: %v", err)
		return
	}
	t.Logf("disk freed again: %d workflow_job webhooks were refused", refused("workflow_job", "queued")+
		refused("workflow_job", "in_progress")+refused("workflow_job", "completed"))
}

// labelCandidates counts the open PRs.
func labelCandidates(t *testing.T, h *harness) int {
	return searchCount(t, h, "repo:"+e2eRepo+" is:pr is:open")
}

// searchCount is the total_count of GitHub's issue search for q.
func searchCount(t *testing.T, h *harness, q string) int {
	q = url.QueryEscape(q)
	req, _ := http.NewRequest("GET", h.gh.URL()+"/search/issues?per_page=1&q="+q, nil)
	req.Header.Set("Authorization", "Bearer test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("searching %s: %v", q, err)
		return 0
	}
	defer resp.Body.Close()
	var v struct {
		TotalCount int `json:"total_count"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.TotalCount == 0 {
		t.Errorf("searching %s: %d found (%v)", q, v.TotalCount, err)
	}
	return v.TotalCount
}
