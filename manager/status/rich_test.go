package status_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/fleet"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/notify"
	"github.com/buildfleet/buildfleet/manager/status"
	"github.com/buildfleet/buildfleet/manager/store"
	"github.com/buildfleet/buildfleet/manager/trigger"
)

// IDs of the rich fixture's requests besides fixture.good and fixture.evil.
const (
	passedID = "1111111111111111" // every builder passed
	failedID = "2222222222222222" // ubuntu-quick failed, macos-refleak a fleet error
)

// richFixture is the fixture with history: requests done and failed, the
// good request still waiting for a host on macos-refleak, and hosts ready,
// missing, drained and disabled after three failures, with their notices.
// Every figure on the pages comes from the real store, a real fleet's
// queue and a real health tracker.
type richFixture struct {
	*fixture
	hooks *hookCounter
	fleet *fleet.Fleet
}

// hookCounter is the notices' webhook receiver.
type hookCounter struct {
	mu sync.Mutex
	n  int
}

// fixedNodes is a Nomad fleet as the health tracker sees it.
type fixedNodes struct {
	mu    sync.Mutex
	nodes []nomad.Node
}

func (f *fixedNodes) Nodes(context.Context) ([]nomad.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]nomad.Node(nil), f.nodes...), nil
}

func (f *fixedNodes) SetEligibility(_ context.Context, id string, eligible bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.nodes {
		if f.nodes[i].ID == id {
			f.nodes[i].Eligible = eligible
		}
	}
	return nil
}

func (f *fixedNodes) down(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.nodes {
		if f.nodes[i].Name == name {
			f.nodes[i].Status = "down"
		}
	}
}

func meta(owner, contact, tiers string) map[string]string {
	return map[string]string{notify.MetaOwner: owner, notify.MetaContact: contact, notify.MetaTiers: tiers,
		notify.MetaPlatform: "linux-x86_64", notify.MetaIsolation: "user"}
}

func newRichFixture(t *testing.T) *richFixture {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t, nil)
	st := f.st
	rf := &richFixture{fixture: f, hooks: &hookCounter{}}

	// Two finished requests, older than the fixture's.
	for i, id := range []string{passedID, failedID} {
		q := create(t, st, store.Request{ID: id, DeliveryID: "d-h" + id[:1], Repo: "python/cpython", PR: 100 + i,
			SHA: "b" + id + "cccccccccccccccccccccccc", Tier: "quick", Label: "🔨 test-with-buildbots", Actor: "core-dev",
			Role: "write", State: trigger.StateDispatched, CreatedAt: t0.Add(-time.Duration(3-i) * time.Hour)})
		from, state, reason, runID := trigger.StateDispatched, trigger.StateDone, "succeeded", int64(500+i)
		if id == failedID {
			reason = "failed"
		}
		builders := `[{"name":"ubuntu-quick","labels":["buildfleet-a"]},{"name":"macos-refleak","labels":["buildfleet-b"]}]`
		if err := st.UpdateRequest(ctx, q.ID, store.RequestFields{From: &from, State: &state, Reason: &reason, RunID: &runID,
			Builders: &builders}); err != nil {
			t.Fatal(err)
		}
	}
	type run struct {
		req, pool, state, conclusion, host string
		job                                int64
		queued, placed, started, finished  time.Duration // after the request
	}
	for _, r := range []run{
		{passedID, "ubuntu-quick", fleet.StateCompleted, "success", "donor-a", 7001, 2 * time.Second, 5 * time.Second, 9 * time.Second, 20 * time.Minute},
		{passedID, "macos-refleak", fleet.StateCompleted, "success", "donor-c", 7002, 2 * time.Second, 6 * time.Second, 10 * time.Second, 40 * time.Minute},
		{failedID, "ubuntu-quick", fleet.StateCompleted, "failure", "donor-a", 7101, 2 * time.Second, 4 * time.Second, 8 * time.Second, 30 * time.Minute},
		{failedID, "macos-refleak", fleet.StateGaveUp, "", "", 7102, 2 * time.Second, 0, 0, 6 * time.Hour},
	} {
		base := t0.Add(-3 * time.Hour)
		if r.req == failedID {
			base = t0.Add(-2 * time.Hour)
		}
		row, err := st.CreateRunner(ctx, store.Runner{GitHubJobID: r.job, Attempt: 1, RunID: 500, RequestID: r.req,
			Repo: "python/cpython", Pool: r.pool, RunnerName: "bf-" + r.pool + "-" + r.req[:2], State: r.state,
			Conclusion: r.conclusion, HTMLURL: "https://github.example/python/cpython/actions/runs/500/job/" + r.req[:1] + r.pool,
			ReceivedAt: base.Add(r.queued)})
		if err != nil {
			t.Fatal(err)
		}
		m := store.RunnerMarks{NodeName: &r.host}
		at := func(d time.Duration) *time.Time {
			if d == 0 {
				return nil
			}
			x := base.Add(d)
			return &x
		}
		m.PlacedAt, m.RunningAt, m.StartedAt, m.FinishedAt = at(r.placed), at(r.placed), at(r.started), at(r.finished)
		if err := st.MarkRunner(ctx, row.GitHubJobID, row.Attempt, m); err != nil {
			t.Fatal(err)
		}
		if r.state == fleet.StateGaveUp {
			why := "no eligible host: 1 node ineligible"
			if err := st.UpdateRunner(ctx, row.GitHubJobID, row.Attempt, store.RunnerFields{NomadReason: &why}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The good request: ubuntu-quick runs on donor-a; macos-refleak waits.
	host, placed := "donor-a", t0.Add(-60*time.Second)
	if err := st.MarkRunner(ctx, 9001, 2, store.RunnerMarks{NodeName: &host, PlacedAt: &placed, RunningAt: &placed,
		StartedAt: &placed}); err != nil {
		t.Fatal(err)
	}
	why, blocked := "no eligible host: 1 node ineligible", "blocked"
	if err := st.UpdateRunner(ctx, 9002, 1, store.RunnerFields{NomadReason: &why, NomadState: &blocked}); err != nil {
		t.Fatal(err)
	}

	// Hosts: donor-a ready, donor-b missing, donor-c drained, donor-d
	// disabled by buildfleet after three failures in a row.
	nodes := &fixedNodes{nodes: []nomad.Node{
		{ID: "node-a", Name: "donor-a", Datacenter: "dc1", Status: "ready", Eligible: true, Slots: 4, Used: 1,
			Meta: meta("Ann Donor", "ann@example.org", "quick")},
		{ID: "node-b", Name: "donor-b", Datacenter: "dc1", Status: "ready", Eligible: true, Slots: 2,
			Meta: meta("Bob", "https://example.org/bob", "quick,refleak")},
		{ID: "node-c", Name: "donor-c", Datacenter: "dc2", Status: "ready", Eligible: false, Draining: true, Slots: 2,
			Meta: meta("Cy", "cy@example.org", "refleak")},
		{ID: "node-d", Name: "donor-d", Datacenter: "dc1", Status: "ready", Eligible: true, Slots: 8,
			Meta: meta("Dee", "dee@example.org", "quick")},
	}}
	hook := httptest.NewServer(httpHandlerFunc(func() {
		rf.hooks.mu.Lock()
		rf.hooks.n++
		rf.hooks.mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	now := t0.Add(-time.Hour)
	ncfg := config.Notify{MissingAfter: config.Duration(15 * time.Minute), MaxFailures: 3,
		FailureWindow: config.Duration(24 * time.Hour), WebhookURL: config.Secret(hook.URL)}
	tr := notify.New(notify.Options{Config: ncfg, Nodes: nodes, Store: st, Senders: notify.Senders(ncfg),
		Now: func() time.Time { return now }})
	tr.Poll(ctx)
	nodes.down("donor-b")
	tr.Poll(ctx)
	for i, kind := range []string{notify.FailureNeverStarted, notify.FailureLost, notify.FailureNotTaken} {
		tr.RecordFailure(ctx, "donor-d", "bf-ubuntu-quick-8"+string(rune('0'+i)), kind, "exit 1")
	}
	now = t0
	tr.Poll(ctx)
	tr.SendPending(ctx)

	fl := fleet.New(fleet.Options{Config: f.cfg, Store: st})
	rf.fleet = fl
	h := status.New(status.Options{Store: st, Config: f.cfg, Queue: fl, Health: tr, Fleet: poolHosts{nodes},
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return t0 }})
	f.srv.Close()
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return rf
}

// httpHandlerFunc answers 204 after calling fn.
func httpHandlerFunc(fn func()) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fn()
		w.WriteHeader(http.StatusNoContent)
	}
}

// poolHosts shows the tracker's nodes as every pool's hosts.
type poolHosts struct{ n *fixedNodes }

func (p poolHosts) Hosts(ctx context.Context, _ config.Pool) ([]status.Host, error) {
	ns, _ := p.n.Nodes(ctx)
	var out []status.Host
	for _, n := range ns {
		out = append(out, status.Host{Name: n.Name, Datacenter: n.Datacenter, Status: n.Status, Eligible: n.Eligible,
			Draining: n.Draining, Running: n.Used, Slots: n.Slots})
	}
	return out, nil
}
