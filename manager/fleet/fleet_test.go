package fleet

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/lifecycle"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/store"
)

// fakeGitHub records the fleet's writes.
type fakeGitHub struct {
	mu       sync.Mutex
	jit      []string // runner names
	jitLabel [][]string
	statuses []string // "context state description"
	deleted  []int64

	registered []github.SelfHostedRunner
}

func (g *fakeGitHub) GenerateJITConfig(_ context.Context, _, _, name string, _ int64, labels []string) (int64, config.Secret, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range g.registered {
		if r.Name == name {
			return 0, "", fmt.Errorf("registering %s: %w", name, github.ErrConflict) // as GitHub: names are unique
		}
	}
	g.jit = append(g.jit, name)
	g.jitLabel = append(g.jitLabel, labels)
	return int64(len(g.jit)), config.Secret("jit-" + name), nil
}

func (g *fakeGitHub) DeleteRunner(_ context.Context, _, _ string, id int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.deleted = append(g.deleted, id)
	for i, r := range g.registered {
		if r.ID == id {
			g.registered = append(g.registered[:i], g.registered[i+1:]...)
			break
		}
	}
	return nil
}

func (g *fakeGitHub) CreateStatus(_ context.Context, _, _, _, state, _, desc, ctxName string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.statuses = append(g.statuses, ctxName+" "+state+" "+desc)
	return nil
}

// fakeNomad dispatches into a list; down makes every call fail.
type fakeNomad struct {
	mu         sync.Mutex // parallel starts
	down       bool
	dispatched []nomad.Runner
	stopped    []string

	secrets        []string
	secretsDeleted []string
	updates        chan nomad.Update
	blocked        string
	live           []nomad.LiveRunner
}

func (n *fakeNomad) DispatchChild(_ context.Context, _ config.Pool, r nomad.Runner) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down {
		return "", errors.New("connection refused")
	}
	if r.JITConfig != "" {
		return "", errors.New("a JIT config in a dispatch would be readable with read-job")
	}
	n.dispatched = append(n.dispatched, r)
	return fmt.Sprintf("child-%d", len(n.dispatched)), nil
}

func (n *fakeNomad) WriteRunnerSecret(_ context.Context, _ config.Pool, r nomad.Runner) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down {
		return errors.New("connection refused")
	}
	if r.JITConfig == "" {
		return errors.New("empty JIT config")
	}
	n.secrets = append(n.secrets, r.Name)
	return nil
}

func (n *fakeNomad) StopRunner(_ context.Context, id string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopped = append(n.stopped, id)
	return nil
}

func (n *fakeNomad) DeleteRunnerSecret(_ context.Context, _ config.Pool, name string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.secretsDeleted = append(n.secretsDeleted, name)
	return nil
}

func (n *fakeNomad) Watch(context.Context, uint64) <-chan nomad.Update { return n.updates }

func (n *fakeNomad) BlockedReason(context.Context, string) (string, error) { return n.blocked, nil }

func (n *fakeNomad) LiveRunners(context.Context) ([]nomad.LiveRunner, error) { return n.live, nil }

func (g *fakeGitHub) ListRunners(context.Context, string, string) ([]github.SelfHostedRunner, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]github.SelfHostedRunner(nil), g.registered...), nil
}

var labels = []string{"self-hosted", "linux", "x86_64", "quick"}

// bindingLabel is the builder's label in ourRequest; the deliveries carry
// it in another case, as GitHub compares labels case-insensitively.
const bindingLabel = "buildfleet-testbinding"

func newTestFleet(t testing.TB, maxRunners int) (*Fleet, *store.Store, *fakeGitHub, *fakeNomad) {
	t.Helper()
	return newTestFleetAt(t, filepath.Join(t.TempDir(), "s.db"), maxRunners)
}

// newTestFleetAt is newTestFleet with its store file at path.
func newTestFleetAt(t testing.TB, path string, maxRunners int) (*Fleet, *store.Store, *fakeGitHub, *fakeNomad) {
	t.Helper()
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := config.Config{Pools: []config.Pool{{Name: "linux-quick", Labels: labels, MaxRunners: maxRunners}}}
	gh, nm := &fakeGitHub{}, &fakeNomad{}
	return New(Options{Config: cfg, Store: st, GitHub: gh, Nomad: nm}), st, gh, nm
}

// ourRequest stores a request whose run is 7, as the trigger leaves it.
func ourRequest(t *testing.T, st *store.Store, state lifecycle.State, runID int64) {
	t.Helper()
	ctx := context.Background()
	if _, _, err := st.CreateRequest(ctx, store.Request{ID: "r1", Repo: "o/r", PR: 1, SHA: "pr-head", Tier: "quick", State: state,
		Builders: `[{"name":"linux-quick","labels":["` + bindingLabel + `"]}]`}); err != nil {
		t.Fatal(err)
	}
	tries := 1
	f := store.RequestFields{DispatchTries: &tries}
	if runID != 0 {
		f.RunID = &runID
	}
	if err := st.UpdateRequest(ctx, "r1", f); err != nil {
		t.Fatal(err)
	}
}

func delivery(id, action string, jobID, runID int64, extra string) store.Delivery {
	return store.Delivery{ID: id, Event: "workflow_job", ReceivedAt: time.Now(), Payload: []byte(fmt.Sprintf(
		`{"action":%q,"workflow_job":{"id":%d,"run_id":%d,"name":"b","labels":["Buildfleet-TestBinding"],"html_url":"https://gh/job/%d"%s},"repository":{"full_name":"o/r"}}`,
		action, jobID, runID, jobID, extra))}
}

func TestJobLifecycleWritesThreeTimes(t *testing.T) {
	f, st, gh, nm := newTestFleet(t, 4)
	ourRequest(t, st, "dispatched", 7)
	ctx := context.Background()
	steps := []store.Delivery{
		delivery("d1", "queued", 100, 7, ""),
		delivery("d1", "queued", 100, 7, ""), // a replay starts nothing new
		delivery("d2", "in_progress", 100, 7, `,"runner_name":"bf-linux-quick-100-1"`),
		delivery("d3", "completed", 100, 7, `,"conclusion":"success"`),
		delivery("d3", "completed", 100, 7, `,"conclusion":"success"`),
	}
	for _, d := range steps {
		if err := f.HandleJob(ctx, d); err != nil {
			t.Fatalf("%s: %v", d.ID, err)
		}
	}
	if len(gh.jit) != 1 || gh.jit[0] != "bf-linux-quick-100-1" || len(nm.dispatched) != 1 {
		t.Errorf("JIT configs %v, dispatched %v; want one runner", gh.jit, nm.dispatched)
	}
	if fmt.Sprint(gh.jitLabel) != "[["+bindingLabel+"]]" {
		t.Errorf("runner registered with labels %v, want only the builder's binding label", gh.jitLabel)
	}
	want := []string{"buildfleet/linux-quick pending running on bf-linux-quick-100-1", "buildfleet/linux-quick success build success"}
	if fmt.Sprint(gh.statuses) != fmt.Sprint(want) {
		t.Errorf("statuses %q, want %q", gh.statuses, want)
	}
	if len(gh.jit)+len(gh.statuses)+len(gh.deleted) != 3 {
		t.Errorf("%d GitHub writes, want 3", len(gh.jit)+len(gh.statuses)+len(gh.deleted))
	}
	if len(nm.stopped) != 1 || nm.stopped[0] != "child-1" {
		t.Errorf("stopped %v, want the child purged", nm.stopped)
	}
	r, _ := st.LatestRunner(ctx, 100)
	if r.State != StateCompleted || r.Conclusion != "success" || r.NomadJobID != "child-1" {
		t.Errorf("runner row %+v", r)
	}
}

// TestCompletedBeforeInProgressSpendsNoRemoval: a quick job's completed
// webhook is handled before its in_progress one (the attempt still says
// dispatched). Its own runner ran it, and GitHub removed that ephemeral
// registration with the job: the fleet stops the child and spends no
// write on a removal that could only get a 404. A job cancelled while its
// runner waited still has its registration removed.
func TestCompletedBeforeInProgressSpendsNoRemoval(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		test, extra string
		wantDeleted int
	}{
		{"ran by its own runner", `,"conclusion":"success","runner_name":"bf-linux-quick-100-1"`, 0},
		{"cancelled while the runner waited", `,"conclusion":"cancelled"`, 1},
	} {
		t.Run(tc.test, func(t *testing.T) {
			f, st, gh, nm := newTestFleet(t, 4)
			ourRequest(t, st, "dispatched", 7)
			for _, d := range []store.Delivery{delivery("d1", "queued", 100, 7, ""), delivery("d3", "completed", 100, 7, tc.extra)} {
				if err := f.HandleJob(ctx, d); err != nil {
					t.Fatalf("%s: %v", d.ID, err)
				}
			}
			if len(gh.deleted) != tc.wantDeleted {
				t.Errorf("registrations removed %v, want %d", gh.deleted, tc.wantDeleted)
			}
			if len(nm.stopped) != 1 {
				t.Errorf("children stopped %v, want the runner's child", nm.stopped)
			}
			if r, _ := st.LatestRunner(ctx, 100); r.State != StateCompleted {
				t.Errorf("attempt in state %s, want %s", r.State, StateCompleted)
			}
		})
	}
}

func TestForeignAndInFlightRuns(t *testing.T) {
	ctx := context.Background()
	t.Run("no request at all: ignored", func(t *testing.T) {
		f, _, gh, nm := newTestFleet(t, 4)
		if err := f.HandleJob(ctx, delivery("d1", "queued", 100, 99, "")); err != nil {
			t.Fatal(err)
		}
		if len(gh.jit)+len(gh.statuses)+len(nm.dispatched) != 0 {
			t.Errorf("a foreign job got %v %v %v", gh.jit, gh.statuses, nm.dispatched)
		}
	})
	t.Run("dispatch in flight: waits, then starts", func(t *testing.T) {
		f, st, gh, _ := newTestFleet(t, 4)
		ourRequest(t, st, "accepted", 0)
		if err := f.HandleJob(ctx, delivery("d1", "queued", 100, 7, "")); !errors.Is(err, errPending) {
			t.Fatalf("err = %v, want pending while the run id is unknown", err)
		}
		run := int64(7)
		from, state := lifecycle.Accepted, lifecycle.Dispatched
		if err := st.UpdateRequest(ctx, "r1", store.RequestFields{RunID: &run, From: &from, State: &state}); err != nil {
			t.Fatal(err)
		}
		if err := f.HandleJob(ctx, delivery("d1", "queued", 100, 7, "")); err != nil || len(gh.jit) != 1 {
			t.Fatalf("err = %v, JIT configs %v; want one runner", err, gh.jit)
		}
	})
}

func TestFullPoolAndNomadDownWait(t *testing.T) {
	ctx := context.Background()
	f, st, gh, nm := newTestFleet(t, 1)
	ourRequest(t, st, "dispatched", 7)
	if err := f.HandleJob(ctx, delivery("d1", "queued", 100, 7, "")); err != nil {
		t.Fatal(err)
	}
	if err := f.HandleJob(ctx, delivery("d2", "queued", 101, 7, "")); !errors.Is(err, errPending) {
		t.Fatalf("second job in a pool of 1: err = %v, want pending", err)
	}
	if err := f.HandleJob(ctx, delivery("d3", "completed", 100, 7, `,"conclusion":"failure"`)); err != nil {
		t.Fatal(err)
	}
	nm.down = true
	if err := f.HandleJob(ctx, delivery("d2", "queued", 101, 7, "")); !errors.Is(err, errPending) {
		t.Fatalf("nomad down: err = %v, want pending", err)
	}
	if len(gh.jit) != 1 {
		t.Errorf("JIT configs %v; none may be generated while Nomad is down", gh.jit)
	}
	nm.down = false
	if err := f.HandleJob(ctx, delivery("d2", "queued", 101, 7, "")); err != nil || len(gh.jit) != 2 {
		t.Fatalf("err = %v, JIT configs %v", err, gh.jit)
	}
	if last := gh.statuses[len(gh.statuses)-1]; last != "buildfleet/linux-quick failure build failure" {
		t.Errorf("final status of the failed job = %q", last)
	}
}

// TestParallelStartsKeepMaxRunners: one pass starts the queued jobs of a
// request at once, and never more than the pool's max_runners.
func TestParallelStartsKeepMaxRunners(t *testing.T) {
	f, st, gh, nm := newTestFleet(t, 3)
	ourRequest(t, st, "dispatched", 7)
	ctx := context.Background()
	for i := int64(0); i < 5; i++ {
		d := delivery(fmt.Sprintf("q%d", i), "queued", 200+i, 7, "")
		if _, err := st.PutDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	f.pass(ctx)
	f.waitStarts() // the pass does not wait for its starts
	nm.mu.Lock()
	started := len(nm.dispatched)
	nm.mu.Unlock()
	if started != 3 || len(gh.jit) != 3 {
		t.Fatalf("%d children, %d JIT configs after one pass; want 3 and 3 (max_runners)", started, len(gh.jit))
	}
	un, err := st.Unprocessed(ctx, 10, "workflow_job")
	if err != nil || len(un) != 2 {
		t.Errorf("%d deliveries left (%v); want the 2 jobs that wait for room", len(un), err)
	}
}

// TestSupersededRequestNotReported: the cancelled jobs of a superseded
// request must not overwrite the results of the request that replaced it.
func TestSupersededRequestNotReported(t *testing.T) {
	f, st, gh, _ := newTestFleet(t, 4)
	ourRequest(t, st, "dispatched", 7)
	ctx := context.Background()
	if err := f.HandleJob(ctx, delivery("d1", "queued", 100, 7, "")); err != nil {
		t.Fatal(err)
	}
	from, sup := lifecycle.Dispatched, lifecycle.Superseded
	if err := st.UpdateRequest(ctx, "r1", store.RequestFields{From: &from, State: &sup}); err != nil {
		t.Fatal(err)
	}
	if err := f.HandleJob(ctx, delivery("d2", "completed", 100, 7, `,"conclusion":"cancelled"`)); err != nil {
		t.Fatal(err)
	}
	if len(gh.statuses) != 0 {
		t.Errorf("statuses %q for a superseded request, want none", gh.statuses)
	}
	r, _ := st.LatestRunner(ctx, 100)
	if r.State != StateCompleted {
		t.Errorf("runner row %+v, want completed", r)
	}
}

// TestLostRunnerStaysTheFleetsError: once a runner was lost mid-job, the
// job's later completed event (GitHub giving up on the runner) does not
// turn the fleet's error into the PR's failure, and the slot is free.
func TestLostRunnerStaysTheFleetsError(t *testing.T) {
	f, st, gh, _ := newTestFleet(t, 1)
	ourRequest(t, st, "dispatched", 7)
	ctx := context.Background()
	for _, d := range []store.Delivery{
		delivery("d1", "queued", 100, 7, ""),
		delivery("d2", "in_progress", 100, 7, `,"runner_name":"bf-linux-quick-100-1"`),
	} {
		if err := f.HandleJob(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := st.LatestRunner(ctx, 100)
	req, _ := st.Request(ctx, "r1")
	if err := f.lost(ctx, req, r, "task runner: Exit Code: 137"); err != nil {
		t.Fatal(err)
	}
	if err := f.HandleJob(ctx, delivery("d3", "completed", 100, 7, `,"conclusion":"failure"`)); err != nil {
		t.Fatal(err)
	}
	want := []string{"buildfleet/linux-quick pending running on bf-linux-quick-100-1",
		"buildfleet/linux-quick error the runner was lost: task runner: Exit Code: 137"}
	if fmt.Sprint(gh.statuses) != fmt.Sprint(want) {
		t.Errorf("statuses %q, want %q", gh.statuses, want)
	}
	if n, _ := st.ActiveRunners(ctx, "linux-quick", activeStates...); n != 0 {
		t.Errorf("%d active attempts, want the slot free", n)
	}
}
