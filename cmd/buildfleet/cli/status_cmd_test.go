package cli

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/fleet"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/notify"
	"github.com/buildfleet/buildfleet/manager/status"
	"github.com/buildfleet/buildfleet/manager/store"
)

func TestStatusCommand(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sha := strings.Repeat("c0", 20)
	if _, _, err := st.CreateRequest(ctx, store.Request{
		ID: "0123456789abcdef", DeliveryID: "d", Repo: "python/cpython", PR: 42, SHA: sha,
		Tier: "quick", Label: "🔨 test-with-buildbots", Actor: "triager", State: "dispatched",
		CreatedAt: time.Now().Add(-time.Minute),
	}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	srv := httptest.NewServer(status.New(status.Options{Store: st, Config: cfg}))
	defer srv.Close()

	code, out, errs := run(t, nil, "status", "--url", srv.URL)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errs)
	}
	for _, want := range []string{"REQUEST", "0123456789abcdef", "python/cpython", "#42", sha[:10], "triager", "dispatched"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	code, out, errs = run(t, nil, "status", "--url", srv.URL, "0123456789abcdef")
	if code != 0 || !strings.Contains(out, "PR #42 at "+sha) {
		t.Errorf("status ID: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := run(t, nil, "status", "--url", srv.URL, "ffffffffffffffff"); code != 1 || !strings.Contains(errs, "no such request") {
		t.Errorf("unknown request: exit %d, %s", code, errs)
	}
	if code, _, errs := run(t, nil, "status", "--url", srv.URL, "../../etc"); code != 2 || !strings.Contains(errs, "not a request id") {
		t.Errorf("malformed id: exit %d, %s", code, errs)
	}
	if code, _, _ := run(t, nil, "status", "--url", "ftp://x"); code != 2 {
		t.Errorf("bad url: exit %d, want 2", code)
	}
}

// nodesOf is a Nomad fleet of fixed nodes for the health tracker.
type nodesOf []nomad.Node

func (n nodesOf) Nodes(context.Context) ([]nomad.Node, error)      { return n, nil }
func (nodesOf) SetEligibility(context.Context, string, bool) error { return nil }

// TestStatusOverview: `buildfleet status` shows the pages' figures as
// tables and, with --json, as the manager's JSON: requests, pools, the
// queue with its reasons, the hosts with their owners, the release status.
func TestStatusOverview(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, err := st.CreateRequest(ctx, store.Request{ID: "0123456789abcdef", DeliveryID: "d", Repo: "python/cpython",
		PR: 42, SHA: strings.Repeat("c0", 20), Tier: "quick", Actor: "triager", State: "dispatched"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateRunner(ctx, store.Runner{GitHubJobID: 9, Attempt: 1, RunID: 7, RequestID: "0123456789abcdef",
		Repo: "python/cpython", Pool: "linux-quick", RunnerName: "bf-linux-quick-9-1", State: fleet.StateDispatched}); err != nil {
		t.Fatal(err)
	}
	why := "no eligible host: 1 node ineligible"
	if err := st.UpdateRunner(ctx, 9, 1, store.RunnerFields{NomadReason: &why}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Pools = []config.Pool{{Name: "linux-quick", Platform: "linux-x86_64", Tier: "quick", Stable: true, MaxRunners: 2}}
	tr := notify.New(notify.Options{Store: st, Nodes: nodesOf{{ID: "n1", Name: "donor-a", Status: "ready", Eligible: true,
		Slots: 4, Meta: map[string]string{notify.MetaOwner: "Ann Donor", notify.MetaContact: "ann@example.org", notify.MetaTiers: "quick"}}}})
	srv := httptest.NewServer(status.New(status.Options{Store: st, Config: cfg, Queue: fleet.New(fleet.Options{Config: cfg, Store: st}),
		Health: tr}))
	defer srv.Close()

	code, out, errs := run(t, nil, "status", "--url", srv.URL)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"0123456789abcdef", "POOLS", "linux-quick", "QUEUE", "no eligible host: 1 node ineligible",
		"HOSTS", "donor-a", "Ann Donor", "ann@example.org", "ready", "0/4",
		"RELEASE STATUS", "quick: not every stable builder has a verdict",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	code, out, errs = run(t, nil, "status", "--url", srv.URL, "--json")
	if code != 0 {
		t.Fatalf("status --json: exit %d: %s", code, errs)
	}
	var got struct {
		Requests struct {
			Requests []struct{ ID string } `json:"requests"`
			Pools    []struct {
				Name    string `json:"name"`
				Pending int    `json:"pending"`
			} `json:"pools"`
		} `json:"requests"`
		Queue struct {
			Queue []struct{ Reason string } `json:"queue"`
		} `json:"queue"`
		Hosts struct {
			Hosts []struct{ Owner string } `json:"hosts"`
		} `json:"hosts"`
		Summary struct {
			Tiers []struct{ Tier string } `json:"tiers"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if len(got.Requests.Requests) != 1 || got.Requests.Pools[0].Pending != 1 || len(got.Queue.Queue) != 1 ||
		got.Queue.Queue[0].Reason != why || got.Hosts.Hosts[0].Owner != "Ann Donor" || got.Summary.Tiers[0].Tier != "quick" {
		t.Errorf("--json = %+v", got)
	}
}

// TestStatusOfARecoveredLabelWithoutCommit: a label the scan found but
// whose commit could not be known ends skipped without a build; `status`
// says so and why.
func TestStatusOfARecoveredLabelWithoutCommit(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reason := "the commit the label was added on is unknown: a push after the label was not recorded"
	if _, _, err := st.CreateRequest(ctx, store.Request{
		ID: "00000000000000aa", DeliveryID: "recovered", Repo: "python/cpython", PR: 7,
		Tier: "quick", Label: "🔨 test-with-buildbots", Actor: "triager", State: "skipped", Reason: reason,
		CreatedAt: time.Now().Add(-time.Minute),
	}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(status.New(status.Options{Store: st, Config: config.Default()}))
	defer srv.Close()
	code, out, errs := run(t, nil, "status", "--url", srv.URL, "00000000000000aa")
	if code != 0 || !strings.Contains(out, "PR #7 at an unknown commit") || !strings.Contains(out, "skipped ("+reason+")") {
		t.Errorf("status ID: exit %d\n%s%s", code, out, errs)
	}
}
