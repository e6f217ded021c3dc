package fleet

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/actrunner"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/store"
)

// A pool that runs github-act-runner gives its runner the archive and
// checksum act_runner lists for the pool's platform, as GitHub's runner
// packages are given (dispatch meta); GitHub's list is not asked.
func TestActRunnerPoolGetsItsArchive(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	pkgs, err := actrunner.Parse([]byte(sum+"  github-act-runner-v0.13.0-freebsd-amd64.tar.gz\n"), "https://fleet.example.org/runners/", "SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := config.Config{Pools: []config.Pool{{Name: "linux-quick", Platform: "freebsd-x86_64", Runner: config.RunnerActRunner, Labels: labels, MaxRunners: 2}}}
	gh, nm := &fakeGitHub{}, &fakeNomad{}
	f := New(Options{Config: cfg, Store: st, GitHub: gh, Nomad: nm, ActRunner: pkgs})
	ourRequest(t, st, "dispatched", 7)
	if err := f.HandleJob(context.Background(), delivery("d1", "queued", 100, 7, "")); err != nil {
		t.Fatal(err)
	}
	want := nomad.Package{URL: "https://fleet.example.org/runners/github-act-runner-v0.13.0-freebsd-amd64.tar.gz", SHA256: sum, Version: "v0.13.0"}
	if len(nm.dispatched) != 1 || nm.dispatched[0].Package != want {
		t.Fatalf("dispatched %+v, want one runner with %+v", nm.dispatched, want)
	}

	// Without the checksums, no runner starts unverified.
	f2 := New(Options{Config: cfg, Store: st, GitHub: gh, Nomad: nm})
	if _, err := f2.runnerPackage(context.Background(), cfg.Pools[0]); err == nil || !strings.Contains(err.Error(), "act_runner") {
		t.Errorf("runnerPackage without act_runner = %v, want an error", err)
	}
}
