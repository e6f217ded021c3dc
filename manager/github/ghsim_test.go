package github

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/ghsim"
)

// TestAgainstGhsim runs the trigger path's calls against the simulator,
// with its rate-limit faults, through the real stack.
func TestAgainstGhsim(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		name := "github.com"
		if legacy {
			name = "GHES without return_run_details"
		}
		t.Run(name, func(t *testing.T) {
			sim := ghsim.New(ghsim.Options{LegacyDispatch: legacy})
			srv := httptest.NewServer(sim.Handler())
			t.Cleanup(srv.Close)
			sim.SetBaseURL(srv.URL)
			labels := []string{"🔨 test-with-buildbots", "a/b", "50% #1: x?"}
			must(t, sim.CreateRepo(ghsim.RepoSpec{Owner: "python", Name: "cpython", DefaultBranch: "main", WorkflowsDir: "../../workflows"}))
			sim.AddUser("triager")
			must(t, sim.AddCollaborator("python/cpython", "triager", "triage"))
			sha := strings.Repeat("ab", 20)
			pr, err := sim.OpenPR("python/cpython", ghsim.PRSpec{Title: "t", Author: "someone", HeadSHA: sha, Fork: "someone"})
			must(t, err)
			for _, l := range labels {
				must(t, sim.LabelPR("python/cpython", pr, l, "triager"))
			}
			clock := newFakeClock()
			c, err := New(config.GitHub{APIURL: srv.URL + "/", Token: "t0k3n"}, Options{Retry: Retry{Now: clock.Now, Sleep: clock.Sleep}})
			must(t, err)
			ctx := context.Background()

			must(t, sim.AddFault(ghsim.Fault{Kind: ghsim.FaultTooMany, Path: "/permission$", Count: 1, RetryAfter: 3}))
			role, err := c.Role(ctx, "python", "cpython", "triager")
			if err != nil || role != "triage" {
				t.Fatalf("Role = %q, %v", role, err)
			}
			if got, ok := retryAfterSlept(clock, 3*time.Second); !ok {
				t.Errorf("slept %v, want the 3 s Retry-After", got)
			}
			if _, err := c.Role(ctx, "python", "cpython", "nobody-at-all"); !errors.Is(err, ErrNotFound) {
				t.Errorf("unknown user: err = %v", err)
			}
			p, err := c.PullRequest(ctx, "python", "cpython", pr)
			if err != nil || p.HeadSHA != sha || !p.Fork || p.State != "open" {
				t.Errorf("PullRequest = %+v, %v", p, err)
			}
			found, err := c.LabeledOpenPRs(ctx, "python", "cpython", labels[0])
			if err != nil || len(found) != 1 || found[0] != pr {
				t.Errorf("LabeledOpenPRs = %v, %v", found, err)
			}
			who, _, err := c.LastLabeler(ctx, "python", "cpython", pr, labels[1])
			if err != nil || who != "triager" {
				t.Errorf("LastLabeler = %q, %v", who, err)
			}
			must(t, sim.AddFault(ghsim.Fault{Kind: ghsim.FaultSecondary, Method: "DELETE", Count: 1, RetryAfter: 5}))
			for _, l := range labels {
				if err := c.RemoveLabel(ctx, "python", "cpython", pr, l); err != nil {
					t.Errorf("RemoveLabel(%q): %v", l, err)
				}
				if err := c.RemoveLabel(ctx, "python", "cpython", pr, l); !errors.Is(err, ErrNotFound) {
					t.Errorf("RemoveLabel(%q) again: err = %v, want ErrNotFound", l, err)
				}
			}
			id, err := c.Comment(ctx, "python", "cpython", pr, "scheduled <!-- buildfleet:request=R1 -->")
			must(t, err)
			if got, err := c.FindComment(ctx, "python", "cpython", pr, "<!-- buildfleet:request=R1 -->"); err != nil || got != id {
				t.Errorf("FindComment = %d, %v; want %d", got, err, id)
			}
			must(t, c.EditComment(ctx, "python", "cpython", id, "edited <!-- buildfleet:request=R1 -->"))
			branch, err := c.DefaultBranch(ctx, "python", "cpython")
			if err != nil || branch != "main" {
				t.Fatalf("DefaultBranch = %q, %v", branch, err)
			}
			d, err := c.DispatchWorkflow(ctx, "python", "cpython", "buildbots.yml", branch,
				map[string]string{"pr": "1", "sha": sha, "tier": "quick", "request_id": "R1", "builders": `[{"name":"linux-x86_64-quick","labels":["self-hosted","linux","x64","quick"]}]`})
			must(t, err)
			if legacy != (d.RunID == 0) {
				t.Errorf("Dispatch = %+v (legacy %v)", d, legacy)
			}
			// Without run details (legacy), FindRun is how the run is found.
			found1, err := c.FindRun(ctx, "python", "cpython", "buildbots.yml", "buildfleet R1:", time.Now().Add(-time.Hour))
			if err != nil || (!legacy && found1.ID != d.RunID) || found1.DisplayTitle != "buildfleet R1: PR #1 (quick)" {
				t.Errorf("FindRun = %+v, %v; dispatch %+v", found1, err, d)
			}
			if legacy {
				return
			}
			run := Run{ID: d.RunID}
			if got, err := c.GetRun(ctx, "python", "cpython", run.ID); err != nil || got.ID != run.ID {
				t.Errorf("GetRun = %+v, %v", got, err)
			}
			if err := c.CancelRun(ctx, "python", "cpython", run.ID); err != nil {
				t.Errorf("CancelRun: %v", err)
			}
		})
	}
}

// TestFindRunAgainstGhsim finds dispatched runs by the request id in their
// run-name (display_title) through ghsim's per-workflow runs list, across
// pages, by workflow file name, bounded by the created filter.
func TestFindRunAgainstGhsim(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)
	sim := ghsim.New(ghsim.Options{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	must(t, sim.CreateRepo(ghsim.RepoSpec{Owner: "python", Name: "cpython", DefaultBranch: "main", WorkflowsDir: "../../workflows"}))
	dispatch := func(file, requestID string) int64 {
		t.Helper()
		id, err := sim.Dispatch("python/cpython", file, map[string]any{
			"pr": "7", "sha": strings.Repeat("cd", 20), "tier": "quick", "request_id": requestID,
			"builders": `[{"name":"linux-x86_64-quick","labels":["self-hosted","linux","x64","quick"]}]`,
		}, "buildfleet-bot")
		must(t, err)
		return id
	}
	// The oldest run is on the second page of 100, newest first.
	early := dispatch("quick-demo.yml", "req-early")
	mu.Lock()
	now = now.Add(time.Hour)
	since := now
	mu.Unlock()
	target := dispatch("quick-demo.yml", "req-target")
	for i := range perPage {
		dispatch("quick-demo.yml", fmt.Sprintf("req-filler-%d", i))
	}
	other := dispatch("buildbots.yml", "req-other")
	clock := newFakeClock()
	c, err := New(config.GitHub{APIURL: srv.URL + "/", Token: "t0k3n"}, Options{Retry: Retry{Now: clock.Now, Sleep: clock.Sleep}})
	must(t, err)
	ctx := context.Background()

	run, err := c.FindRun(ctx, "python", "cpython", "quick-demo.yml", "buildfleet req-target:", since)
	if err != nil || run.ID != target || run.DisplayTitle != "buildfleet req-target: PR #7 (quick)" ||
		run.Event != "workflow_dispatch" || run.Status != "queued" || run.CreatedAt.Before(since) {
		t.Errorf("FindRun(req-target) = %+v, %v; want run %d", run, err, target)
	}
	if run, err := c.FindRun(ctx, "python", "cpython", "quick-demo.yml", "buildfleet req-early:", time.Time{}); err != nil || run.ID != early {
		t.Errorf("FindRun(req-early, no since) = %+v, %v; want run %d", run, err, early)
	}
	// Created before since: ghsim's created filter leaves it out.
	if run, err := c.FindRun(ctx, "python", "cpython", "quick-demo.yml", "buildfleet req-early:", since); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindRun(req-early, since) = %+v, %v; want ErrNotFound", run, err)
	}
	// Runs of another workflow are not listed.
	if run, err := c.FindRun(ctx, "python", "cpython", "quick-demo.yml", "buildfleet req-other:", time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindRun(req-other) in quick-demo.yml = %+v, %v; want ErrNotFound", run, err)
	}
	if run, err := c.FindRun(ctx, "python", "cpython", "buildbots.yml", "buildfleet req-other:", since); err != nil || run.ID != other {
		t.Errorf("FindRun(req-other) = %+v, %v; want run %d", run, err, other)
	}
	if run, err := c.FindRun(ctx, "python", "cpython", "no-such.yml", "req-target", since); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindRun in an unknown workflow = %+v, %v; want ErrNotFound", run, err)
	}
}

func retryAfterSlept(c *fakeClock, d time.Duration) ([]time.Duration, bool) {
	s := c.Slept()
	for _, x := range s {
		if x == d {
			return s, true
		}
	}
	return s, false
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
