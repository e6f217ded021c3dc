package manager

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/internal/ghsim"
	"github.com/buildfleet/buildfleet/internal/testenv"
)

// TestLabelRefusedDuringStoreOutageIsBuilt: the store's disk is full when
// the label is added, so its webhook gets 503 and GitHub never sends it
// again. Once space is freed the manager sees the store write again and
// scans for labels by itself (the periodic scan is off): the label is
// built, once, at the labelled commit. The label is younger than the
// scan's minimum age when the outage ends, so the scan that finds it is
// the one the manager runs again once the label is old enough.
func TestLabelRefusedDuringStoreOutageIsBuilt(t *testing.T) {
	dir := testenv.SmallDisk(t, "4m")

	clk := newGHClock()
	clk.add(10*time.Minute - 10*time.Second) // GitHub's clock 10 s behind
	gh, pr, _ := startGHSimWith(t, ghsim.Options{Now: clk.now})
	h := &harness{t: t, gh: gh, pr: pr, cfg: e2eConfig(t, gh.URL()), recoverEvery: -1, recoverMinAge: 8 * time.Second}
	h.cfg.Store.Path = filepath.Join(dir, "buildfleet.db")
	h.start()
	// The manager's cleanup (stop) must run before the unmount.
	t.Cleanup(h.stop)
	if _, err := gh.AddHook(e2eRepo, "http://"+h.m.Addr().String()+"/webhook", e2eSecret, []string{"pull_request", "workflow_job", "workflow_run"}); err != nil {
		t.Fatal(err)
	}
	// A push the manager receives: the PR's head before the label.
	h.sha = strings.Repeat("e5", 20)
	if err := gh.PushPR(e2eRepo, pr, h.sha); err != nil {
		t.Fatal(err)
	}
	h.deliveredOrDropped("synchronize", 1)
	clk.add(5 * time.Second)

	filler := filepath.Join(dir, "filler")
	if err := testenv.FillDisk(filler); err != nil {
		t.Fatal(err)
	}
	if err := gh.LabelPR(e2eRepo, pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.deliveredOrDropped("labeled", 1)
	for _, d := range gh.Deliveries() {
		if d.Action == "labeled" && d.StatusCode != 503 {
			t.Fatalf("the labeled webhook on a full disk was answered %d, want 503", d.StatusCode)
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(60 * time.Second)
	for len(h.runs()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no run for the label refused during the outage; log:\n%s", h.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	runs := h.runs()
	if len(runs) != 1 {
		t.Fatalf("%d runs, want 1", len(runs))
	}
	if sha := runs[0]["inputs"].(map[string]any)["sha"]; sha != h.sha {
		t.Errorf("dispatched sha %v, want the labelled %s", sha, h.sha)
	}
	if !strings.Contains(h.logs.String(), "the store writes again") {
		t.Errorf("the scan did not follow the end of the outage; log:\n%s", h.logs.String())
	}
	reqs, _ := h.m.store.ListRequests(context.Background(), 10)
	if len(reqs) != 1 || reqs[0].DeliveryID != "recovered" {
		t.Errorf("requests = %+v; want one recovered", reqs)
	}
}
