package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/ghsim"
	"github.com/buildfleet/buildfleet/internal/nomadtest"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/store"
)

// fleetSetup shapes a fleet harness beyond the defaults.
type fleetSetup struct {
	// script, when set, is a POSIX sh script run as the runner command
	// instead of ghsim runner; $GHSIM is the stand-in runner's path.
	script string
	// pools replaces fleetPools().
	pools []config.Pool
	// waitingAfter is the manager's WaitingAfter.
	waitingAfter time.Duration
	// reconcileEvery is the manager's ReconcileEvery.
	reconcileEvery time.Duration
	// recoverEvery is the manager's RecoverEvery (default: off).
	recoverEvery time.Duration
	// recoverMinAge is the manager's RecoverMinAge (default 2m).
	recoverMinAge time.Duration
	// writeLimits are the manager's WriteLimits (default GitHub's).
	writeLimits []github.Limit
	// configure, when set, changes the manager's config before it starts.
	configure func(*config.Config)
	// ghsim configures the simulator (RunnerCommand is set to the built
	// ghsim, whose runner the packages of runners/downloads start).
	ghsim ghsim.Options
	// actRunner is the manager's act_runner (pools that run
	// github-act-runner).
	actRunner config.ActRunner
	// meta is added to the node's meta; notify is the manager's config.
	meta   map[string]string
	notify *config.Notify
}

// newFleetHarnessWith is newFleetHarness with a runner script, pools and
// a waiting threshold of its own.
func newFleetHarnessWith(t testing.TB, s fleetSetup) (*harness, *nomadtest.Agent) {
	t.Helper()
	bin, err := ghsimBinary()
	if err != nil {
		t.Fatalf("building ghsim: %v", err)
	}
	meta := map[string]string{nomad.DefaultTierMetaKey: "quick,refleak"}
	for k, v := range s.meta {
		meta[k] = v
	}
	ag := nomadtest.Start(t, nomadtest.Options{Meta: meta})
	s.ghsim.RunnerCommand = bin
	gh, pr, sha := startGHSimWith(t, s.ghsim)
	h := &harness{t: t, gh: gh, pr: pr, sha: sha, cfg: e2eConfig(t, gh.URL()), recoverEvery: -1, waitingAfter: s.waitingAfter,
		reconcileEvery: s.reconcileEvery, writeLimits: s.writeLimits, recoverMinAge: s.recoverMinAge}
	if s.recoverEvery != 0 {
		h.recoverEvery = s.recoverEvery
	}
	h.cfg.Nomad.Address = ag.Addr
	h.cfg.Nomad.Namespace = "default"
	h.cfg.Pools = fleetPools()
	if s.pools != nil {
		h.cfg.Pools = s.pools
	}
	h.cfg.ActRunner = s.actRunner
	if s.notify != nil {
		h.cfg.Notify = *s.notify
	}
	if s.configure != nil {
		s.configure(&h.cfg)
	}
	h.cfg.ApplyDefaults()

	nc, err := nomad.New(h.cfg.Nomad)
	if err != nil {
		t.Fatal(err)
	}
	ids := runnerDir(t, 0o1777)
	body := s.script
	if body == "" {
		body = "exec \"$GHSIM\" runner\n"
	}
	path := filepath.Join(runnerDir(t, 0o755), "runner.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\nGHSIM="+bin+"\nIDS="+ids+"\nALLOCS="+filepath.Join(ag.DataDir, "alloc")+"\n"+runnerPrelude+body), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd, args := "/bin/sh", []string{path}
	t.Cleanup(func() { checkRunnerIDs(t, ids) })
	ro := nomad.RenderOptions{Command: cmd, Args: args, KillTimeout: 2 * time.Second,
		Resources: map[string]nomad.Resources{config.TierQuick: {CPU: 100, MemoryMB: 64}}}
	for _, p := range h.cfg.Pools {
		job, err := nomad.RenderPoolJob(p, ro)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.RegisterPool(context.Background(), job); err != nil {
			t.Fatalf("registering pool %s: %v", p.Name, err)
		}
	}
	h.start()
	if _, err := gh.AddHook(e2eRepo, "http://"+h.m.Addr().String()+"/webhook", e2eSecret, []string{"pull_request", "workflow_job", "workflow_run"}); err != nil {
		t.Fatal(err)
	}
	return h, ag
}

// finalStatuses are the non-pending statuses by context.
func (h *harness) finalStatuses() map[string]ghStatus {
	out := map[string]ghStatus{}
	for _, s := range h.statuses(h.sha) {
		if s.State != "pending" {
			out[s.Context] = s
		}
	}
	return out
}

func (h *harness) waitFinal(n int, within time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for len(h.finalStatuses()) < n {
		if time.Now().After(deadline) {
			h.t.Fatalf("final statuses %+v; all: %+v", h.finalStatuses(), h.statuses(h.sha))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (h *harness) runnerRows() []store.Runner {
	reqs, _ := h.m.store.ListRequests(context.Background(), 10)
	if len(reqs) == 0 {
		return nil
	}
	rs, _ := h.m.store.RunnersOfRequest(context.Background(), reqs[0].ID)
	return rs
}

// ghRunnerNames are the runner registrations ghsim still has.
func (h *harness) ghRunnerNames() []string {
	var v struct {
		Runners []struct{ Name string } `json:"runners"`
	}
	req, _ := http.NewRequest("GET", h.gh.URL()+"/repos/"+e2eRepo+"/actions/runners", nil)
	req.Header.Set("Authorization", "Bearer test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&v)
	var out []string
	for _, r := range v.Runners {
		out = append(out, r.Name)
	}
	return out
}

// failFirstAttempt exits 1 in the first attempt of every job, before the
// runner redeems its JIT config, and runs ghsim's runner otherwise.
const failFirstAttempt = `if [ "$NOMAD_META_attempt" = "1" ]; then
  echo "attempt 1 fails on purpose" >&2
  exit 1
fi
exec "$GHSIM" runner --jitconfig-file "$JIT_CONFIG_FILE"
`

func TestFailedAllocationGetsASecondRunner(t *testing.T) {
	arch := fleetPools()[0]
	h, _ := newFleetHarnessWith(t, fleetSetup{script: failFirstAttempt, pools: []config.Pool{arch, fleetPools()[3]}})
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.waitFinal(1, 90*time.Second)
	if s := h.finalStatuses()["buildfleet/"+arch.Name]; s.State != "success" {
		t.Fatalf("status %+v, want success after a second attempt", s)
	}
	rs := h.runnerRows()
	if len(rs) != 2 {
		t.Fatalf("runner rows %+v, want 2 attempts", rs)
	}
	if r := rs[0]; r.Attempt != 1 || r.State != "replaced" || r.NomadState != "failed" || r.NomadReason == "" {
		t.Errorf("attempt 1 %+v, want failed with Nomad's reason", r)
	}
	if r := rs[1]; r.Attempt != 2 || r.State != "completed" || r.Conclusion != "success" || r.RunnerName == rs[0].RunnerName {
		t.Errorf("attempt 2 %+v, want completed under a new name", r)
	}
	if n := h.calls("POST", "/generate-jitconfig"); n != 2 {
		t.Errorf("%d JIT configs, want 2 (one per attempt)", n)
	}
	if names := h.ghRunnerNames(); len(names) != 0 {
		t.Errorf("registrations left: %v", names)
	}
	t.Logf("attempt 1 failed with: %s", rs[0].NomadReason)
}

func TestAllAttemptsFailReportsTheFleetsError(t *testing.T) {
	h, _ := newFleetHarnessWith(t, fleetSetup{script: "echo no runner here >&2\nexit 3\n",
		pools: []config.Pool{fleetPools()[0], fleetPools()[3]}})
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.waitFinal(1, 90*time.Second)
	s := h.finalStatuses()["buildfleet/"+fleetPools()[0].Name]
	if s.State != "error" || !strings.Contains(s.Description, "the fleet could not start a runner: task runner: Exit Code: 3") {
		t.Errorf("status %+v, want the fleet's error with Nomad's reason", s)
	}
	if n := h.calls("POST", "/generate-jitconfig"); n != 3 {
		t.Errorf("%d JIT configs, want 3 attempts", n)
	}
}

// cancelRun cancels a run through ghsim's REST API, as a user would.
func (h *harness) cancelRun(id int64) {
	h.t.Helper()
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/repos/%s/actions/runs/%d/cancel", h.gh.URL(), e2eRepo, id), nil)
	req.Header.Set("Authorization", "Bearer test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		h.t.Fatalf("cancel: %d", resp.StatusCode)
	}
}

func TestCancelledRunStopsPendingRunners(t *testing.T) {
	// Runners that start but never take their job: they stay pending on
	// GitHub (queued jobs) while Nomad runs them.
	h, ag := newFleetHarnessWith(t, fleetSetup{script: "exec sleep 300\n"})
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "3 runners running on Nomad", func() bool {
		n := 0
		for _, r := range h.runnerRows() {
			if r.NomadState == "running" {
				n++
			}
		}
		return n == 3
	})
	reqs, _ := h.m.store.ListRequests(context.Background(), 1)
	h.cancelRun(reqs[0].RunID)
	eventually(t, "the runner jobs stopped", func() bool {
		jobs, _, err := ag.Client.Jobs().List(nil)
		if err != nil {
			return false
		}
		for _, j := range jobs {
			if j.ParentID != "" && !j.Stop && j.Status != "dead" {
				return false
			}
		}
		return true
	})
	eventually(t, "cancelled reported", func() bool { return len(h.finalStatuses()) == 3 })
	for c, s := range h.finalStatuses() {
		if s.State != "error" || !strings.HasSuffix(s.Description, "cancelled") {
			t.Errorf("%s: %+v, want error cancelled", c, s)
		}
	}
	for _, r := range h.runnerRows() {
		if r.State != "completed" || r.Conclusion != "cancelled" {
			t.Errorf("row %+v", r)
		}
	}
	eventually(t, "registrations deleted", func() bool { return len(h.ghRunnerNames()) == 0 })
}

func TestNoEligibleHostWaitsThenPlaces(t *testing.T) {
	pools := []config.Pool{fleetPools()[0], fleetPools()[3]}
	h, ag := newFleetHarnessWith(t, fleetSetup{pools: pools, waitingAfter: time.Second})
	if _, err := ag.Client.Nodes().ToggleEligibility(ag.NodeID, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	ctxName := "buildfleet/" + pools[0].Name
	defer func() {
		if t.Failed() {
			t.Logf("runner rows: %+v\nstatuses: %+v", h.runnerRows(), h.statuses(h.sha))
		}
	}()
	var waiting ghStatus
	eventually(t, "waiting for a host", func() bool {
		for _, s := range h.statuses(h.sha) {
			if s.Context == ctxName && strings.HasPrefix(s.Description, "queued: no eligible host in "+pools[0].Name+": ") {
				waiting = s
				return true
			}
		}
		return false
	})
	if waiting.State != "pending" {
		t.Errorf("waiting status %+v, want pending", waiting)
	}
	t.Logf("reported: %s", waiting.Description)
	time.Sleep(500 * time.Millisecond) // a few sweeps: still one waiting status
	if _, err := ag.Client.Nodes().ToggleEligibility(ag.NodeID, true, nil); err != nil {
		t.Fatal(err)
	}
	h.waitFinal(1, 60*time.Second)
	if s := h.finalStatuses()[ctxName]; s.State != "success" {
		t.Errorf("status %+v, want success once the host is eligible", s)
	}
	n, found := 0, 0
	for _, s := range h.statuses(h.sha) {
		if strings.HasPrefix(s.Description, "queued: no eligible host") {
			n++
		}
		if strings.HasPrefix(s.Description, "host found: ") {
			found++
		}
	}
	if n != 1 || found > 1 {
		t.Errorf("%d waiting statuses and %d host found, want 1 and at most 1 (coalesced with running)", n, found)
	}
	rs := h.runnerRows()
	if len(rs) != 1 || rs[0].Attempt != 1 {
		t.Errorf("rows %+v, want the one attempt placed once eligible", rs)
	}
}
