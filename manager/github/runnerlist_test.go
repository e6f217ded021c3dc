package github

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/ghsim"
)

// TestListRunnersAgainstGhsim reads every page of the registrations: a
// runner not yet started is offline and idle.
func TestListRunnersAgainstGhsim(t *testing.T) {
	sim := ghsim.New(ghsim.Options{})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	must(t, sim.CreateRepo(ghsim.RepoSpec{Owner: "python", Name: "cpython", DefaultBranch: "main", WorkflowsDir: "../../workflows"}))
	c, err := New(config.GitHub{APIURL: srv.URL + "/", Token: "t0k3n"}, Options{})
	must(t, err)
	ctx := context.Background()
	want := perPage + 3
	for i := range want {
		if _, _, err := c.GenerateJITConfig(ctx, "python", "cpython", fmt.Sprintf("bf-x-%d-1", i), DefaultRunnerGroup, []string{"linux"}); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := c.ListRunners(ctx, "python", "cpython")
	if err != nil || len(rs) != want {
		t.Fatalf("ListRunners = %d runners, %v; want %d", len(rs), err, want)
	}
	if r := rs[0]; r.ID == 0 || r.Name != "bf-x-0-1" || r.Status != "offline" || r.Busy {
		t.Errorf("first runner %+v", r)
	}
}

// TestListRunnerApplicationsAgainstGhsim: every platform with its URL and
// checksum, as ghsim's runners/downloads serves them.
func TestListRunnerApplicationsAgainstGhsim(t *testing.T) {
	sim := ghsim.New(ghsim.Options{})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	must(t, sim.CreateRepo(ghsim.RepoSpec{Owner: "python", Name: "cpython", DefaultBranch: "main", WorkflowsDir: "../../workflows"}))
	c, err := New(config.GitHub{APIURL: srv.URL + "/", Token: "t0k3n"}, Options{})
	must(t, err)
	ps, err := c.ListRunnerApplications(context.Background(), "python", "cpython")
	must(t, err)
	seen := map[string]bool{}
	for _, p := range ps {
		seen[p.OS+"-"+p.Arch] = true
		if len(p.SHA256) != 64 || !strings.HasPrefix(p.URL, srv.URL+"/") || !strings.HasSuffix(p.URL, p.Filename) {
			t.Errorf("package %+v", p)
		}
	}
	if len(seen) != 6 || !seen["osx-arm64"] || !seen["win-arm64"] {
		t.Errorf("platforms %v", seen)
	}
	if _, err := c.ListRunnerApplications(context.Background(), "python", "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown repository: %v, want ErrNotFound", err)
	}
}
