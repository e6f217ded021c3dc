package manager

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/nomadtest"
)

// ghsimBinary builds cmd/ghsim once per test process: the stand-in runner
// that Nomad starts with a JIT config.
var ghsimBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "buildfleet-ghsim-")
	if err != nil {
		return "", err
	}
	ghsimDir = dir
	// Runners run as uids of their own (isolate.sh): they must reach it.
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "ghsim")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/ghsim")
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{string(b), err}
	}
	return out, nil
})

// ghsimDir holds the built ghsim; TestMain removes it.
var ghsimDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if ghsimDir != "" {
		os.RemoveAll(ghsimDir)
	}
	os.Exit(code)
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

// fleetPools are three linux pools of the quick tier with label sets none
// of which includes another, all placeable on this host, and a refleak pool (the config's
// refleak trigger needs one; these tests never use it).
func fleetPools() []config.Pool {
	arch := "x86_64"
	if runtime.GOARCH == "arm64" {
		arch = "aarch64"
	}
	base := []string{"self-hosted", "buildfleet", "linux", arch, "quick"}
	mk := func(name string, extra ...string) config.Pool {
		return config.Pool{Name: name, Platform: "linux-" + arch, Tier: "quick", Stable: true,
			Labels: append(append([]string(nil), base...), extra...)}
	}
	refleak := mk("linux-refleak")
	refleak.Tier, refleak.Labels[len(base)-1] = "refleak", "refleak"
	// No pool's labels may include another's: GitHub (and ghsim) gives a
	// job to any runner with all its labels, so an asan runner would take
	// a plain job and leave the asan job without a runner.
	return []config.Pool{mk("linux-quick", "release"), mk("linux-debug-quick", "debug"), mk("linux-asan-quick", "asan"), refleak}
}

// newFleetHarness is the trigger harness plus a Nomad dev agent with the
// pools' jobs registered, running ghsim's stand-in runner.
func newFleetHarness(t *testing.T) (*harness, *nomadtest.Agent) {
	t.Helper()
	return newFleetHarnessWith(t, fleetSetup{})
}

// allocWatcher records every runner allocation the agent ever shows: the
// fleet purges finished children, so a later listing would miss them.
func allocWatcher(t *testing.T, ag *nomadtest.Agent) func() map[string]string {
	var mu sync.Mutex
	seen := map[string]string{} // alloc ID → job ID
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			allocs, _, err := ag.Client.Allocations().List((&api.QueryOptions{}).WithContext(ctx))
			if err == nil {
				mu.Lock()
				for _, a := range allocs {
					if strings.HasPrefix(a.JobID, "runner-") {
						seen[a.ID] = a.JobID
					}
				}
				mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() map[string]string {
		mu.Lock()
		defer mu.Unlock()
		out := make(map[string]string, len(seen))
		for k, v := range seen {
			out[k] = v
		}
		return out
	}
}

type ghStatus struct {
	State       string `json:"state"`
	Context     string `json:"context"`
	TargetURL   string `json:"target_url"`
	Description string `json:"description"`
}

func (h *harness) statuses(sha string) []ghStatus {
	var v struct {
		Statuses []ghStatus `json:"statuses"`
	}
	h.getJSON("/_ghsim/repos/"+e2eRepo+"/commits/"+sha, &v)
	return v.Statuses
}

// The labelled-PR scenario, run by github-act-runner (the runner for
// platforms GitHub ships none for) through the job spec and bootstrap that
// donors' hosts use: isolate.sh, then run-runner.sh, which downloads and
// verifies the archive the dispatch meta names.
func TestLabelStartsOneRunnerPerBuilderOnNomad(t *testing.T) {
	setup, downloads := actRunnerSetup(t, fleetPools())
	h, ag := newFleetHarnessWith(t, setup)
	allocs := allocWatcher(t, ag)
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	final := func() map[string]ghStatus {
		out := map[string]ghStatus{}
		for _, s := range h.statuses(h.sha) {
			if s.State != "pending" {
				out[s.Context] = s
			}
		}
		return out
	}
	deadline := time.Now().Add(90 * time.Second)
	for len(final()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("final statuses %+v; all: %+v", final(), h.statuses(h.sha))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range h.cfg.Pools[:3] {
		s, ok := final()["buildfleet/"+p.Name]
		if !ok || s.State != "success" || !strings.Contains(s.TargetURL, "/job/") {
			t.Errorf("status of %s = %+v, want success with a link to the job", p.Name, s)
			continue
		}
		// The Details link shows the real runner's log of the job's steps.
		if page := h.page(s.TargetURL + "?raw=1"); !strings.Contains(page, "Runner OSDescription: github-act-runner") ||
			!strings.Contains(page, "built and tested "+h.sha+" on "+p.Name) {
			t.Errorf("log page of %s lacks the runner's lines:\n%s", p.Name, page)
		}
	}
	// Every job of the run completed by a runner of ours.
	runs := h.runs()
	if len(runs) != 1 {
		t.Fatalf("%d runs, want 1", len(runs))
	}
	b, _ := json.Marshal(runs[0]["jobs"])
	var jobs []struct {
		Conclusion string `json:"conclusion"`
		RunnerName string `json:"runner_name"`
	}
	_ = json.Unmarshal(b, &jobs)
	if len(jobs) != 3 {
		t.Fatalf("jobs = %s", b)
	}
	for _, j := range jobs {
		if j.Conclusion != "success" || !strings.HasPrefix(j.RunnerName, "bf-") {
			t.Errorf("job %+v, want success on a bf- runner", j)
		}
	}
	// One allocation per builder, each its own child job.
	children := map[string]bool{}
	for _, job := range allocs() {
		children[job] = true
	}
	if len(allocs()) != 3 || len(children) != 3 {
		t.Errorf("allocations %v, want 3 on 3 children", allocs())
	}
	// Each builder had its own runner (name, GitHub id, Nomad child).
	reqs, _ := h.m.store.ListRequests(context.Background(), 10)
	rs, _ := h.m.store.RunnersOfRequest(context.Background(), reqs[0].ID)
	ids, names := map[int64]bool{}, map[string]bool{}
	for _, r := range rs {
		ids[r.RunnerID], names[r.RunnerName] = true, true
		if r.State != "completed" || r.Conclusion != "success" || r.NomadJobID == "" {
			t.Errorf("runner row %+v", r)
		}
	}
	if len(rs) != 3 || len(ids) != 3 || len(names) != 3 {
		t.Errorf("runner rows %+v, want 3 distinct", rs)
	}
	// Each child named the github-act-runner archive and its SHA-256 from
	// SHA256SUMS; the host downloaded it once and took it from its cache
	// after (runners start in parallel, so at most one download each).
	file, sum := archiveSum(t)
	for _, r := range rs {
		child, _, err := ag.Client.Jobs().Info(r.NomadJobID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(child.Meta["runner_url"], "/"+file) || child.Meta["runner_sha256"] != sum {
			t.Errorf("dispatch meta %v, want %s with sha256 %s", child.Meta, file, sum)
		}
	}
	if n := downloads.Load(); n < 1 || n > 3 {
		t.Errorf("%d archive downloads for 3 runners", n)
	}
	// Writes per builder: JIT config, in-progress status, final status.
	if n := h.calls("POST", "/generate-jitconfig"); n != 3 {
		t.Errorf("%d JIT configs, want 3", n)
	}
	if n := h.calls("POST", "/statuses/"); n > 6 {
		t.Errorf("%d status writes for 3 builders, want at most 6", n)
	}
	for _, s := range h.statuses(h.sha) {
		if s.State == "pending" && !strings.HasPrefix(s.Description, "running on ") {
			t.Errorf("pending status %+v, want 'running on <host>'", s)
		}
	}
	// No JIT config (base64 of JSON: "eyJ…") in the manager's log, and
	// the log was written at all.
	if logs := h.logs.String(); strings.Contains(logs, "eyJ") || !strings.Contains(logs, "runner dispatched") {
		t.Errorf("manager log holds a JIT config, or is empty:\n%s", logs)
	}
	// The completed run ends the request, so later labels on the PR do
	// not ask GitHub about it.
	eventually(t, "the request done", func() bool {
		reqs, _ := h.m.store.ListRequests(context.Background(), 1)
		return len(reqs) == 1 && reqs[0].State == "done"
	})
	// The write budget per request: label removal, dispatch, the scheduled
	// comment and the summary; per builder: its JIT config, its running
	// and its final status, and a registration removed at most.
	if n := writeTally(t, h, 1, 3); n > 4+4*3 {
		t.Errorf("%d GitHub writes for one request of 3 builders, want at most %d", n, 4+4*3)
	}
}

func TestForeignRunGetsNoRunner(t *testing.T) {
	h, ag := newFleetHarness(t)
	allocs := allocWatcher(t, ag)
	builders, _ := json.Marshal([]map[string]any{{"name": "linux-quick", "labels": h.cfg.Pools[0].Labels}})
	_, err := h.gh.Dispatch(e2eRepo, "quick-demo.yml", map[string]any{
		"pr": "1", "sha": h.sha, "tier": "quick", "request_id": "foreign", "builders": string(builders),
	}, "core")
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the fleet has seen (and dropped) the queued job.
	eventually(t, "workflow_job deliveries handled", func() bool {
		un, _ := h.m.store.Unprocessed(context.Background(), 10, "workflow_job")
		n := 0
		for _, d := range h.gh.Deliveries() {
			if d.Event == "workflow_job" {
				n++
			}
		}
		return n >= 1 && len(un) == 0
	})
	time.Sleep(500 * time.Millisecond)
	if n := h.calls("POST", "/generate-jitconfig"); n != 0 {
		t.Errorf("%d JIT configs for a foreign run, want 0", n)
	}
	if a := allocs(); len(a) != 0 {
		t.Errorf("allocations %v for a foreign run, want none", a)
	}
	if s := h.statuses(h.sha); len(s) != 0 {
		t.Errorf("statuses %+v for a foreign run, want none", s)
	}
}
