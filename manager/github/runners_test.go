package github

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/ghsim"
)

// TestRunnersAndStatusesAgainstGhsim checks the fleet's calls: a JIT
// config per unique name (a duplicate is ErrConflict), deleting the
// registration, and a status whose long description is cut to 140.
func TestRunnersAndStatusesAgainstGhsim(t *testing.T) {
	sim := ghsim.New(ghsim.Options{})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	must(t, sim.CreateRepo(ghsim.RepoSpec{Owner: "python", Name: "cpython", DefaultBranch: "main", WorkflowsDir: "../../workflows"}))
	c, err := New(config.GitHub{APIURL: srv.URL + "/", Token: "t0k3n"}, Options{})
	must(t, err)
	ctx := context.Background()

	id, jit, err := c.GenerateJITConfig(ctx, "python", "cpython", "bf-linux-1-1", DefaultRunnerGroup, []string{"self-hosted", "linux"})
	if err != nil || id == 0 || jit.Reveal() == "" {
		t.Fatalf("GenerateJITConfig = %d, %v", id, err)
	}
	if strings.Contains(jit.String(), jit.Reveal()) {
		t.Error("the JIT config prints in clear")
	}
	if _, _, err := c.GenerateJITConfig(ctx, "python", "cpython", "bf-linux-1-1", DefaultRunnerGroup, []string{"linux"}); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate name: err = %v, want ErrConflict", err)
	}
	must(t, c.DeleteRunner(ctx, "python", "cpython", id))
	if err := c.DeleteRunner(ctx, "python", "cpython", id); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting twice: err = %v, want ErrNotFound", err)
	}

	sha := strings.Repeat("ab", 20)
	long := strings.Repeat("é", 200)
	must(t, c.CreateStatus(ctx, "python", "cpython", sha, "pending", "http://x/job/1", long, "buildfleet/linux"))
	statuses, _, err := c.REST().Repositories.ListStatuses(ctx, "python", "cpython", sha, nil)
	if err != nil || len(statuses) != 1 {
		t.Fatalf("statuses = %v, %v", statuses, err)
	}
	s := statuses[0]
	if s.GetState() != "pending" || s.GetContext() != "buildfleet/linux" || s.GetTargetURL() != "http://x/job/1" ||
		utf8.RuneCountInString(s.GetDescription()) != 140 {
		t.Errorf("status = %+v (description %d chars)", s, utf8.RuneCountInString(s.GetDescription()))
	}
}
