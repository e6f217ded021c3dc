package notify_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/mailsink"
	"github.com/buildfleet/buildfleet/internal/nomadtest"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/notify"
	"github.com/buildfleet/buildfleet/manager/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// downtime is the planned downtime in the test node's meta.
const downtime = "2030-01-01T00:00:00Z/2030-01-02T00:00:00Z"

// TestFailingHostMadeIneligibleOwnerToldOnce runs a real Nomad dev agent
// whose node meta names its owner and a planned downtime. Three
// infrastructure failures in a row inside the downtime change nothing and
// tell nobody; outside it, the third takes the node out of scheduling in
// Nomad and the owner gets exactly one e-mail and one webhook notice; the
// host counts afresh once the owner re-enables it.
func TestFailingHostMadeIneligibleOwnerToldOnce(t *testing.T) {
	ctx := context.Background()
	ag := nomadtest.Start(t, nomadtest.Options{Meta: map[string]string{
		notify.MetaOwner: "Jane Doe", notify.MetaContact: "Jane Doe <jane@example.org>",
		notify.MetaTiers: "quick", notify.MetaDowntime: downtime,
	}})
	node, _, err := ag.Client.Nodes().Info(ag.NodeID, nil)
	if err != nil {
		t.Fatal(err)
	}
	host := node.Name
	eligible := func() bool {
		n, _, err := ag.Client.Nodes().Info(ag.NodeID, nil)
		if err != nil {
			t.Fatal(err)
		}
		return n.SchedulingEligibility == "eligible"
	}
	mail, hook := mailsink.Start(t), newHookSink(t, 0)
	cfg := config.Notify{MaxFailures: 3, FailureWindow: config.Duration(time.Hour),
		SMTP: config.SMTP{Address: mail.Addr(), From: "fleet@example.org"}, WebhookURL: config.Secret(hook.srv.URL)}
	newTracker := func(now time.Time) (*notify.Tracker, *store.Store) {
		nc, err := nomad.New(config.Nomad{Address: ag.Addr, Namespace: "default"})
		if err != nil {
			t.Fatal(err)
		}
		st := openStore(t)
		return notify.New(notify.Options{Config: cfg, Nodes: nc, Store: st, Senders: notify.Senders(cfg),
			Now: func() time.Time { return now }}), st
	}

	t.Run("planned downtime raises no alarm", func(t *testing.T) {
		tr, st := newTracker(time.Date(2030, 1, 1, 6, 0, 0, 0, time.UTC))
		for i := range 3 {
			tr.RecordFailure(ctx, host, "bf-p-1-"+string(rune('1'+i)), notify.FailureLost, "host went away")
		}
		tr.SendPending(ctx)
		if !eligible() {
			t.Error("a host in planned downtime was made ineligible")
		}
		if n, _ := st.HostNotices(ctx, host, 10); len(n) != 0 || len(mail.Messages()) != 0 || len(hook.Received()) != 0 {
			t.Errorf("notices %+v, mails %d, webhooks %d; want none", n, len(mail.Messages()), len(hook.Received()))
		}
	})

	t.Run("three failures in a row", func(t *testing.T) {
		tr, st := newTracker(time.Now())
		tr.RecordFailure(ctx, host, "bf-p-2-1", notify.FailureNeverStarted, "exit 1")
		tr.RecordFailure(ctx, host, "bf-p-3-1", notify.FailureNotTaken, "exited without a job")
		if !eligible() {
			t.Fatal("ineligible after two failures")
		}
		tr.RecordFailure(ctx, host, "bf-p-4-1", notify.FailureLost, "host went away")
		if eligible() {
			t.Fatal("still eligible after three failures in a row")
		}
		tr.RecordFailure(ctx, host, "bf-p-5-1", notify.FailureLost, "host went away")
		tr.SendPending(ctx)
		tr.SendPending(ctx)
		msgs, hooks := mail.Messages(), hook.Received()
		if len(msgs) != 1 || len(hooks) != 1 {
			t.Fatalf("%d mails and %d webhooks, want one each", len(msgs), len(hooks))
		}
		m := msgs[0]
		if m.From != "fleet@example.org" || len(m.To) != 1 || m.To[0] != "jane@example.org" ||
			!strings.Contains(m.Data, "Subject: buildfleet: your host "+host+" was taken out of scheduling") ||
			!strings.Contains(m.Data, "nomad node eligibility -enable "+ag.NodeID) {
			t.Errorf("mail %+v", m)
		}
		if h := hooks[0]; h.Host != host || h.Kind != notify.NoticeIneligible || h.Owner != "Jane Doe" ||
			h.Contact != "Jane Doe <jane@example.org>" || !strings.Contains(h.Body, "failed 3 times in a row") {
			t.Errorf("webhook %+v", h)
		}
		hs, err := tr.Hosts(ctx)
		if err != nil || len(hs) != 1 {
			t.Fatalf("hosts %+v %v", hs, err)
		}
		if h := hs[0]; h.Health != "disabled" || !h.DisabledByFleet || h.Owner != "Jane Doe" || len(h.Failures) != 4 ||
			len(h.Notices) != 2 || h.Notices[0].State != store.NoticeSent {
			t.Errorf("host %+v", h)
		}

		// The owner fixes the host and re-enables it: it is back, and
		// the failures before do not count towards the next notice.
		if _, err := ag.Client.Nodes().ToggleEligibility(ag.NodeID, true, nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "re-enabled host seen", func() bool {
			tr.Poll(ctx)
			hs, _ := tr.Hosts(ctx)
			return len(hs) == 1 && hs[0].Health == "ready"
		})
		tr.RecordFailure(ctx, host, "bf-p-6-1", notify.FailureLost, "host went away")
		if !eligible() {
			t.Error("one failure after re-enabling made the host ineligible")
		}
		if n, _ := st.HostNotices(ctx, host, 10); len(n) != 2 {
			t.Errorf("%d notices, want the 2 of the first episode", len(n))
		}
	})
}

// waitFor polls cond: the node cache of the Nomad client lives 15 s, so a
// change made behind its back shows within that bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// fakeNodes is a fleet of nodes the test changes.
type fakeNodes struct {
	mu    sync.Mutex
	nodes []nomad.Node
}

func (f *fakeNodes) Nodes(context.Context) ([]nomad.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]nomad.Node(nil), f.nodes...), nil
}

func (f *fakeNodes) SetEligibility(_ context.Context, id string, eligible bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.nodes {
		if f.nodes[i].ID == id {
			f.nodes[i].Eligible = eligible
		}
	}
	return nil
}

func (f *fakeNodes) set(name, status string, eligible, draining bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.nodes {
		if f.nodes[i].Name == name {
			f.nodes[i].Status, f.nodes[i].Eligible, f.nodes[i].Draining = status, eligible, draining
		}
	}
}

// TestMissingHosts: a host down longer than missing_after gets one
// notice per episode; a host in planned downtime or paused by its owner
// gets none; a failed webhook delivery is retried.
func TestMissingHosts(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	meta := func(extra ...string) map[string]string {
		m := map[string]string{notify.MetaOwner: "Ann", notify.MetaContact: "ann@example.org"}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	nodes := &fakeNodes{nodes: []nomad.Node{
		{ID: "n1", Name: "alpha", Status: "ready", Eligible: true, Meta: meta()},
		{ID: "n2", Name: "beta", Status: "ready", Eligible: true,
			Meta: meta(notify.MetaDowntime, "2026-05-01T11:00:00Z/2026-05-01T18:00:00Z")},
		{ID: "n3", Name: "gamma", Status: "ready", Eligible: true, Meta: meta()},
	}}
	hook := newHookSink(t, 1)
	st := openStore(t)
	cfg := config.Notify{MissingAfter: config.Duration(15 * time.Minute), MaxFailures: 3, FailureWindow: config.Duration(time.Hour),
		WebhookURL: config.Secret(hook.srv.URL)}
	reg := prometheus.NewRegistry()
	tr := notify.New(notify.Options{Config: cfg, Nodes: nodes, Store: st, Senders: notify.Senders(cfg),
		Now: func() time.Time { return now }, Registerer: reg})
	tr.Poll(ctx)
	nodes.set("alpha", "down", true, false)
	nodes.set("beta", "down", true, false)
	nodes.set("gamma", "down", true, true) // drained, then switched off
	for range 3 {
		tr.Poll(ctx)
		now = now.Add(10 * time.Minute)
	}
	tr.SendPending(ctx) // the webhook answers 500 once
	tr.SendPending(ctx)
	got := hook.Received()
	if len(got) != 1 || got[0].Host != "alpha" || got[0].Kind != notify.NoticeMissing {
		t.Fatalf("webhooks %+v, want one missing notice for alpha", got)
	}
	ns, _ := st.HostNotices(ctx, "alpha", 10)
	if len(ns) != 1 || ns[0].State != store.NoticeSent || ns[0].Tries != 2 {
		t.Errorf("alpha's notices %+v, want one sent at the second try", ns)
	}
	for labels, want := range map[string]float64{"missing webhook retried": 1, "missing webhook sent": 1, "ineligible webhook sent": 0} {
		if got := counter(t, reg, "buildfleet_notices_total", labels); got != want {
			t.Errorf("buildfleet_notices_total{%s} = %v, want %v", labels, got, want)
		}
	}
	hs, _ := tr.Hosts(ctx)
	health := map[string]string{}
	for _, h := range hs {
		health[h.Name] = h.Health
	}
	if health["alpha"] != "missing" || health["beta"] != "downtime" || health["gamma"] != "down" {
		t.Errorf("health %v", health)
	}
	// Back, then missing again: a new episode, a new notice.
	nodes.set("alpha", "ready", true, false)
	tr.Poll(ctx)
	nodes.set("alpha", "down", true, false)
	for range 3 {
		tr.Poll(ctx)
		now = now.Add(10 * time.Minute)
	}
	tr.SendPending(ctx)
	if got := hook.Received(); len(got) != 2 {
		t.Errorf("%d webhooks, want a second for the second episode", len(got))
	}
}

func TestDowntime(t *testing.T) {
	for _, tc := range []struct {
		v      string
		wantOK bool
	}{
		{"", true},
		{"2026-05-01T11:00:00Z/2026-05-01T18:00:00Z", true},
		{"2026-05-01T11:00:00+02:00 / 2026-05-01T18:00:00+02:00", true},
		{"2026-05-01T18:00:00Z/2026-05-01T11:00:00Z", false},
		{"tomorrow", false},
		{"2026-05-01/2026-05-02", false},
	} {
		if _, _, err := notify.Downtime(tc.v); (err == nil) != tc.wantOK {
			t.Errorf("Downtime(%q) = %v", tc.v, err)
		}
	}
}

// counter reads the counter name of reg whose labels kind, channel and
// outcome are given as "kind channel outcome"; -1 when there is none.
func counter(t *testing.T, reg *prometheus.Registry, name, labels string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(labels)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help text", name)
		}
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if got["kind"] == want[0] && got["channel"] == want[1] && got["outcome"] == want[2] {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}
