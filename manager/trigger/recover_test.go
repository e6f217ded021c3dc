package trigger

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/ghsim"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/store"
	"github.com/buildfleet/buildfleet/manager/webhook"
)

const recRepo = "python/cpython"

// clock is a settable clock shared by ghsim (GitHub's clock) and the
// trigger, so that label ages are exact and no test waits on the wall.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recoverEnv is a real ghsim, a real store and a trigger on one clock; no
// webhook reaches the trigger unless the test hands it a delivery.
type recoverEnv struct {
	sim  *ghsim.Server
	st   *store.Store
	trig *Trigger
	clk  *clock
	pr   int
	sha  string
	// emitted counts, per action, the pull_request webhooks the test's
	// own actions made ghsim send (settle waits for them).
	emitted map[string]int
}

func newRecoverEnv(t *testing.T, minAge time.Duration) *recoverEnv {
	t.Helper()
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	sim := ghsim.New(ghsim.Options{Now: clk.now})
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	wf, err := filepath.Abs("../../workflows")
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.CreateRepo(ghsim.RepoSpec{Owner: "python", Name: "cpython", Org: true, WorkflowsDir: wf}); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddCollaborator(recRepo, "triager", "triage"); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.GitHub.APIURL = sim.URL() + "/"
	cfg.GitHub.Token = "ghs_test"
	cfg.GitHub.WebhookSecret = "s"
	cfg.Repositories = []config.Repository{{Name: recRepo, Workflow: "quick-demo.yml"}}
	cfg.Pools = []config.Pool{{Name: "linux-quick", Platform: "linux-x86_64", Tier: "quick",
		Labels: []string{"self-hosted", "buildfleet", "linux", "x86_64", "quick"}, Stable: true}}
	cfg.ApplyDefaults()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	gh, err := github.New(cfg.GitHub, github.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &recoverEnv{sim: sim, st: st, clk: clk, sha: strings.Repeat("a1", 20), emitted: map[string]int{}}
	e.trig = New(Options{Config: cfg, Store: st, GitHub: gh, Now: clk.now, RecoverMinAge: minAge})
	// The manager's webhook intake in front of the store: the PR's
	// pull_request deliveries are its head history.
	hook, err := webhook.New(webhook.Options{Secret: []byte("s"), Sink: st, Events: []string{"pull_request"}, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	hctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { hook.Run(hctx); close(done) }()
	srv := httptest.NewServer(hook)
	t.Cleanup(func() { srv.Close(); stop(); <-done })
	if _, err := sim.AddHook(recRepo, srv.URL, "s", []string{"pull_request"}); err != nil {
		t.Fatal(err)
	}
	if e.pr, err = sim.OpenPR(recRepo, ghsim.PRSpec{Author: "contributor", HeadSHA: e.sha}); err != nil {
		t.Fatal(err)
	}
	e.emitted["opened"]++
	e.settle(t)
	return e
}

// settle waits until ghsim finished every webhook delivery it started
// (delivered or dropped), so the store holds what it will hold.
func (e *recoverEnv) settle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := map[string]int{}
		for _, d := range e.sim.Deliveries() {
			if d.Event == "pull_request" {
				n[d.Action]++
			}
		}
		done := true
		for a, want := range e.emitted {
			done = done && n[a] >= want
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pull_request deliveries finished: %v, want %v", n, e.emitted)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// label adds the quick trigger label as a triager; with drop, its
// webhook is lost.
func (e *recoverEnv) label(t *testing.T, drop bool) {
	t.Helper()
	e.dropNext(t, drop)
	if err := e.sim.LabelPR(recRepo, e.pr, e.trig.cfg.Repositories[0].Triggers[0].Label, "triager"); err != nil {
		t.Fatal(err)
	}
	e.emitted["labeled"]++
	e.settle(t)
}

// push moves the PR's head to sha; with drop, its synchronize webhook is
// lost.
func (e *recoverEnv) push(t *testing.T, sha string, force, drop bool) {
	t.Helper()
	e.dropNext(t, drop)
	push := e.sim.PushPR
	if force {
		push = e.sim.ForcePushPR
	}
	if err := push(recRepo, e.pr, sha); err != nil {
		t.Fatal(err)
	}
	e.emitted["synchronize"]++
	e.settle(t)
}

func (e *recoverEnv) dropNext(t *testing.T, drop bool) {
	t.Helper()
	if !drop {
		return
	}
	if err := e.sim.AddFault(ghsim.Fault{Kind: ghsim.FaultDrop, Event: "pull_request", Count: 1}); err != nil {
		t.Fatal(err)
	}
}

// dispatched lists the sha inputs of the runs dispatched on GitHub.
func (e *recoverEnv) dispatched(t *testing.T) []string {
	t.Helper()
	var runs []struct {
		Inputs map[string]any `json:"inputs"`
	}
	e.getJSON(t, "/_ghsim/repos/"+recRepo+"/runs", &runs)
	var shas []string
	for _, r := range runs {
		sha, _ := r.Inputs["sha"].(string)
		shas = append(shas, sha)
	}
	return shas
}

func (e *recoverEnv) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	req, err := http.NewRequest("GET", e.sim.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestRecoverMinAgeIsAnOption: a label younger than RecoverMinAge is left
// to its webhook; once older, the scan builds it.
func TestRecoverMinAgeIsAnOption(t *testing.T) {
	ctx := context.Background()
	e := newRecoverEnv(t, 10*time.Second)
	e.label(t, true)
	e.clk.add(5 * time.Second)
	e.trig.Recover(ctx)
	if got := e.dispatched(t); len(got) != 0 {
		t.Fatalf("label 5s old, min age 10s: dispatched %v", got)
	}
	e.clk.add(6 * time.Second)
	e.trig.Recover(ctx)
	if got := e.dispatched(t); len(got) != 1 || got[0] != e.sha {
		t.Fatalf("label 11s old, min age 10s: dispatched %v, want one run at %s", got, e.sha)
	}

	// The default keeps two minutes.
	d := newRecoverEnv(t, 0)
	d.label(t, true)
	d.clk.add(time.Minute + 50*time.Second)
	d.trig.Recover(ctx)
	if got := d.dispatched(t); len(got) != 0 {
		t.Fatalf("label 110s old, default min age: dispatched %v", got)
	}
}
