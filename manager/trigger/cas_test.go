package trigger

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/ghsim"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/store"
)

// TestTwoProcessesOneDispatch: the daemon and a `buildfleet trigger`
// process hold the same SQLite file and may both pick up one accepted
// request at the same moment. Each step is a compare-and-set in the store,
// so whatever the interleaving GitHub sees one dispatch and one comment per
// request. Two store handles and two GitHub clients stand for the two
// processes.
func TestTwoProcessesOneDispatch(t *testing.T) {
	ctx := context.Background()
	sim := ghsim.New(ghsim.Options{})
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	wf, err := filepath.Abs("../../workflows")
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.CreateRepo(ghsim.RepoSpec{Owner: "python", Name: "cpython", Org: true, WorkflowsDir: wf}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.GitHub.APIURL = sim.URL() + "/"
	cfg.GitHub.Token = "ghs_test"
	cfg.GitHub.WebhookSecret = "s"
	cfg.Repositories = []config.Repository{{Name: "python/cpython", Workflow: "quick-demo.yml"}}
	cfg.Pools = []config.Pool{{Name: "linux-quick", Platform: "linux-x86_64", Tier: "quick",
		Labels: []string{"self-hosted", "buildfleet", "linux", "x86_64", "quick"}, Stable: true}}
	cfg.ApplyDefaults()

	path := filepath.Join(t.TempDir(), "bf.db")
	var triggers []*Trigger
	for range 2 {
		st, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		gh, err := github.New(cfg.GitHub, github.Options{})
		if err != nil {
			t.Fatal(err)
		}
		triggers = append(triggers, New(Options{Config: cfg, Store: st, GitHub: gh}))
	}

	const n = 8
	var ids []string
	for i := range n {
		pr, err := sim.OpenPR("python/cpython", ghsim.PRSpec{Author: "contributor", HeadSHA: strings.Repeat(fmt.Sprintf("%02x", i+1), 20)})
		if err != nil {
			t.Fatal(err)
		}
		r, _, err := triggers[0].st.CreateRequest(ctx, store.Request{ID: randomID(), DeliveryID: "operator",
			Repo: "python/cpython", PR: pr, SHA: strings.Repeat(fmt.Sprintf("%02x", i+1), 20), Tier: "quick",
			Actor: "operator:test", Role: "operator", State: StateAccepted, LabelRemoved: true})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
		var wg sync.WaitGroup
		for _, tr := range triggers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = tr.advance(ctx, r) // the loser of a step returns a conflict
			}()
		}
		wg.Wait()
	}

	dispatches, comments := 0, 0
	for _, c := range sim.Calls() {
		if c.Status >= 300 || c.Method != "POST" {
			continue
		}
		switch {
		case strings.HasSuffix(c.Path, "/dispatches"):
			dispatches++
		case strings.HasSuffix(c.Path, "/comments"):
			comments++
		}
	}
	if dispatches != n || comments != n {
		t.Errorf("%d dispatches and %d comments for %d requests, want exactly one of each per request", dispatches, comments, n)
	}
	for _, id := range ids {
		r, err := triggers[1].st.Request(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != StateDispatched || r.RunID == 0 || r.DispatchTries != 1 || r.CommentTries != 1 {
			t.Errorf("request %s: state %s run %d dispatch tries %d comment tries %d", id, r.State, r.RunID, r.DispatchTries, r.CommentTries)
		}
	}
}
