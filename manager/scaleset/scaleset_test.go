package scaleset_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/actions/actions-runner-controller/github/actions"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/ghsim"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/scaleset"
	"github.com/buildfleet/buildfleet/manager/store"
	"github.com/buildfleet/buildfleet/manager/trigger"
)

// The source runs against ghsim with ARC's real client, a real go-github
// client and a real SQLite store.

const (
	repoName = "python/cpython"
	token    = "ghp_test"
)

type env struct {
	sim *ghsim.Server
	st  *store.Store
	cfg config.Config
	gh  *github.Client
}

func newEnv(t *testing.T) env {
	t.Helper()
	sim := ghsim.New(ghsim.Options{Tokens: map[string]string{token: "buildfleet-bot"}, JobDuration: time.Millisecond, JobConclusion: "success"})
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	sim.SetScaleSetPollWait(200 * time.Millisecond)
	if err := sim.CreateRepo(ghsim.RepoSpec{Owner: "python", Name: "cpython", Org: true, WorkflowsDir: "../../internal/ghsim/testdata"}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.GitHub.APIURL, cfg.GitHub.Token, cfg.GitHub.WebhookSecret = base+"/", token, "s3cret"
	cfg.Repositories = []config.Repository{{Name: repoName, Workflow: "buildbots.yml",
		Triggers: []config.Trigger{{Label: "test-with-buildbots", Tier: "quick", MinRole: "triage"}}}}
	cfg.Pools = []config.Pool{{Name: "linux-quick", Platform: "linux-x86_64", Tier: "quick", Labels: []string{"bf-linux"},
		Stable: true, Source: config.SourceScaleSet}}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	gh, err := github.New(cfg.GitHub, github.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return env{sim: sim, st: st, cfg: cfg, gh: gh}
}

func (e env) source(t *testing.T) *scaleset.Source {
	t.Helper()
	return e.sourceWith(t, nil)
}

func (e env) sourceWith(t *testing.T, reg prometheus.Registerer) *scaleset.Source {
	t.Helper()
	src, err := scaleset.New(scaleset.Options{Config: e.cfg, Store: e.st, GitHub: e.gh, Owner: "test", Backoff: 20 * time.Millisecond, Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// run starts the source; the returned stop cancels it and waits.
func run(src *scaleset.Source) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { src.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// dispatch starts a run of the buildfleet workflow with one builder per
// labels entry. For ours, a request is stored first, as the trigger does
// (accepted, dispatch tried), and given the run id after.
func (e env) dispatch(t *testing.T, ours bool, labels ...string) int64 {
	t.Helper()
	ctx := context.Background()
	id := "req-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + time.Now().Format("150405.000000000")
	if ours {
		one := 1
		if _, _, err := e.st.CreateRequest(ctx, store.Request{ID: id, Repo: repoName, State: trigger.StateAccepted}); err != nil {
			t.Fatal(err)
		}
		if err := e.st.UpdateRequest(ctx, id, store.RequestFields{DispatchTries: &one}); err != nil {
			t.Fatal(err)
		}
	}
	var bs []map[string]any
	for i, l := range labels {
		bs = append(bs, map[string]any{"name": "builder-" + string(rune('a'+i)), "labels": []string{l}})
	}
	b, _ := json.Marshal(bs)
	run, err := e.sim.Dispatch(repoName, "buildbots.yml", map[string]any{
		"pr": "1", "sha": strings.Repeat("a", 40), "tier": "quick", "request_id": "r1", "builders": string(b)}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if ours {
		from, state := trigger.StateAccepted, trigger.StateDispatched
		if err := e.st.UpdateRequest(ctx, id, store.RequestFields{From: &from, State: &state, RunID: &run}); err != nil {
			t.Fatal(err)
		}
	}
	return run
}

type stored struct {
	id string
	p  scaleset.Payload
}

// waitDeliveries waits until n scale-set deliveries are stored.
func (e env) waitDeliveries(t *testing.T, n int) []stored {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ds, err := e.st.Unprocessed(context.Background(), 100, "workflow_job")
		if err != nil {
			t.Fatal(err)
		}
		var out []stored
		for _, d := range ds {
			var p scaleset.Payload
			if err := json.Unmarshal(d.Payload, &p); err != nil {
				t.Fatal(err)
			}
			out = append(out, stored{d.ID, p})
		}
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries stored, want %d: %+v", len(out), n, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSourceTurnsMessagesIntoDeliveries(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	src := e.sourceWith(t, reg)
	stop := run(src)
	defer stop()
	ctx := context.Background()

	// The listener creates the set and opens a session.
	var setID int
	waitFor(t, "a session", func() bool {
		setID = e.sim.ScaleSetByName(repoName, "linux-quick")
		return setID != 0 && e.sim.ScaleSetSession(setID) != ""
	})

	e.dispatch(t, false, "linux-quick") // not ours: nothing stored, never acquired
	run := e.dispatch(t, true, "linux-quick")
	e.waitDeliveries(t, 1)
	time.Sleep(300 * time.Millisecond) // one more poll: the foreign job must not show up
	got := e.waitDeliveries(t, 1)
	// The service may hand the same job over again (a message not yet
	// acknowledged when the next poll came): more deliveries of our job
	// are fine (the fleet starts one runner per job), another job is not.
	jobs := map[int64]bool{}
	for _, d := range got {
		jobs[d.p.WorkflowJob.ID] = true
	}
	if len(jobs) != 1 {
		t.Fatalf("stored %+v, want only the one job of our run", got)
	}
	q := got[0].p
	if q.Action != "queued" || q.WorkflowJob.RunID != run || q.WorkflowJob.ID == 0 || q.ScaleSet == nil ||
		q.ScaleSet.RequestID == 0 || q.Repository.FullName != repoName || len(q.WorkflowJob.Labels) != 1 {
		t.Fatalf("queued delivery %+v", q)
	}

	// The fleet's part: acquire, then a runner through the set.
	if err := src.Acquire(ctx, "linux-quick", repoName, q.ScaleSet.RequestID); err != nil {
		t.Fatal(err)
	}
	id, jit, err := src.GenerateJITConfig(ctx, "linux-quick", repoName, "bf-linux-quick-1-1")
	if err != nil || id == 0 || jit == "" {
		t.Fatalf("JIT: %d, %v", id, err)
	}
	if _, _, err := src.GenerateJITConfig(ctx, "linux-quick", repoName, "bf-linux-quick-1-1"); err == nil {
		t.Fatal("a second runner of the same name")
	}
	if err := ghsim.RunRunner(ctx, ghsim.RunnerOptions{JITConfig: jit.Reveal(), Out: io.Discard, MaxWait: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	// Queued (once or more), in progress and completed.
	byAction := map[string]scaleset.Payload{}
	for n := len(got) + 2; byAction["in_progress"].Action == "" || byAction["completed"].Action == ""; n++ {
		byAction = map[string]scaleset.Payload{}
		for _, d := range e.waitDeliveries(t, n) {
			byAction[d.p.Action] = d.p
		}
	}
	if p := byAction["in_progress"]; p.WorkflowJob.ID != q.WorkflowJob.ID || p.WorkflowJob.RunnerName == nil || *p.WorkflowJob.RunnerName != "bf-linux-quick-1-1" {
		t.Fatalf("in_progress %+v", p)
	}
	if p := byAction["completed"]; p.WorkflowJob.ID != q.WorkflowJob.ID || p.WorkflowJob.Conclusion == nil || *p.WorkflowJob.Conclusion != "success" {
		t.Fatalf("completed %+v", p)
	}

	// Shutdown deletes the session.
	stop()
	if s := e.sim.ScaleSetSession(setID); s != "" {
		t.Fatalf("session %s left after shutdown", s)
	}
	// Every call was counted, by route.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" {
					routes[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	for _, r := range []string{"POST actions/runner-registration", "POST _apis/runtime/runnerscalesets/{}/acquirejobs",
		"GET messages", "DELETE messages/{}", "DELETE _apis/runtime/runnerscalesets/{}/sessions/{}"} {
		if routes[r] == 0 {
			t.Errorf("no call counted on %q; counted %v", r, routes)
		}
	}
}

func TestSourceRecoversAfterACrash(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// A manager that crashed left its session open and its id in the
	// store; a job came while it was down.
	arc, err := actions.NewClient(strings.TrimRight(e.cfg.GitHub.APIURL, "/")+"/"+repoName, &actions.ActionsAuth{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	set, err := arc.CreateRunnerScaleSet(ctx, &actions.RunnerScaleSet{Name: "linux-quick", RunnerGroupId: 1,
		Labels: []actions.Label{{Type: "System", Name: "linux-quick"}}})
	if err != nil {
		t.Fatal(err)
	}
	stale, err := arc.CreateMessageSession(ctx, set.Id, "crashed")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutKV(ctx, "scaleset.session."+itoa(set.Id), stale.SessionId.String()); err != nil {
		t.Fatal(err)
	}
	e.dispatch(t, true, "linux-quick", "linux-quick")
	e.dispatch(t, false, "linux-quick") // someone else's: not adopted

	stop := run(e.source(t))
	defer stop()
	e.waitDeliveries(t, 2)
	time.Sleep(300 * time.Millisecond) // the foreign job must not be adopted later
	got := e.waitDeliveries(t, 2)
	if len(got) != 2 || got[0].p.WorkflowJob.ID == got[1].p.WorkflowJob.ID || got[0].p.ScaleSet.RequestID == got[1].p.ScaleSet.RequestID {
		t.Fatalf("want our two jobs, each with its own request: %+v", got)
	}
	now := e.sim.ScaleSetSession(set.Id)
	if now == "" || now == stale.SessionId.String() {
		t.Fatalf("session %q: want a new one in place of the stale %s", now, stale.SessionId)
	}
}

func TestSourceWaitsForASessionItDoesNotOwn(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	arc, err := actions.NewClient(strings.TrimRight(e.cfg.GitHub.APIURL, "/")+"/"+repoName, &actions.ActionsAuth{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	set, err := arc.CreateRunnerScaleSet(ctx, &actions.RunnerScaleSet{Name: "linux-quick", RunnerGroupId: 1,
		Labels: []actions.Label{{Type: "System", Name: "linux-quick"}}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := arc.CreateMessageSession(ctx, set.Id, "another-manager")
	if err != nil {
		t.Fatal(err)
	}
	src := e.source(t)
	stop := run(src)
	defer stop()
	time.Sleep(200 * time.Millisecond)
	if s := e.sim.ScaleSetSession(set.Id); s != other.SessionId.String() {
		t.Fatalf("the other listener's session was replaced by %s", s)
	}
	if err := src.Acquire(ctx, "linux-quick", repoName, 1); err == nil {
		t.Fatal("acquired without a session")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// tlog writes the source's log to the test's.
type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) { w.t.Log(strings.TrimSpace(string(p))); return len(p), nil }

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// A job that was available before the session opened, of a dispatch not
// yet recorded then, is adopted once the run id is: no message will come
// for it.
func TestSourceAdoptsOnceTheDispatchIsRecorded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	arc, err := actions.NewClient(strings.TrimRight(e.cfg.GitHub.APIURL, "/")+"/"+repoName, &actions.ActionsAuth{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := arc.CreateRunnerScaleSet(ctx, &actions.RunnerScaleSet{Name: "linux-quick", RunnerGroupId: 1,
		Labels: []actions.Label{{Type: "System", Name: "linux-quick"}}}); err != nil {
		t.Fatal(err)
	}
	one := 1
	if _, _, err := e.st.CreateRequest(ctx, store.Request{ID: "in-flight", Repo: repoName, State: trigger.StateAccepted}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.UpdateRequest(ctx, "in-flight", store.RequestFields{DispatchTries: &one}); err != nil {
		t.Fatal(err)
	}
	runID := e.dispatch(t, false, "linux-quick")
	stop := run(e.source(t))
	defer stop()
	time.Sleep(300 * time.Millisecond) // the session opens and leaves the job alone
	if ds, _ := e.st.Unprocessed(ctx, 10, "workflow_job"); len(ds) != 0 {
		t.Fatalf("adopted before the run was recorded: %+v", ds)
	}
	from, state := trigger.StateAccepted, trigger.StateDispatched
	if err := e.st.UpdateRequest(ctx, "in-flight", store.RequestFields{From: &from, State: &state, RunID: &runID}); err != nil {
		t.Fatal(err)
	}
	got := e.waitDeliveries(t, 1)
	if got[0].p.Action != "queued" || got[0].p.WorkflowJob.RunID != runID {
		t.Fatalf("delivery %+v", got[0])
	}
}

// The listener rides out the service's faults: an expired queue token is
// refreshed, 5xx answers are retried, and a message delivered twice is
// stored once.
func TestSourceRidesOutServiceFaults(t *testing.T) {
	e := newEnv(t)
	src := e.source(t)
	stop := run(src)
	defer stop()
	waitFor(t, "a session", func() bool {
		id := e.sim.ScaleSetByName(repoName, "linux-quick")
		return id != 0 && e.sim.ScaleSetSession(id) != ""
	})
	for _, f := range []ghsim.Fault{
		{Kind: ghsim.FaultTokenExpiry, Service: true, Path: "/_queue/", Count: 1},
		{Kind: ghsim.FaultServerError, Service: true, Path: "/_queue/", Count: 2, Status: 503},
	} {
		if err := e.sim.AddFault(f); err != nil {
			t.Fatal(err)
		}
	}
	e.sim.DuplicateScaleSetMessages(1)
	e.dispatch(t, true, "linux-quick")
	e.waitDeliveries(t, 1)
	time.Sleep(300 * time.Millisecond) // the duplicate is read too
	got := e.waitDeliveries(t, 1)
	if len(got) != 1 || got[0].p.Action != "queued" {
		t.Fatalf("stored %+v, want one queued delivery", got)
	}
	// Every fault fired, and the listener still listens.
	waitFor(t, "the faults to fire", func() bool { return len(e.sim.Faults()) == 0 })
	e.dispatch(t, true, "linux-quick")
	e.waitDeliveries(t, 2)
}
