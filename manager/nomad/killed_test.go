package nomad_test

import (
	"context"
	"strings"
	"testing"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/nomad"
)

// testRunnerKilled: RunnerKilled tells a runner that exited by itself from
// one its host killed, and from one Nomad no longer knows; a runner still
// running is reported as such.
func testRunnerKilled(t *testing.T, f *fixture, linux config.Pool) {
	ctx := context.Background()
	// A pool of its own: the stand-in runner waits until it is released.
	linux.Name, linux.NomadJob = "t-ends", "runner-t-ends"
	f.register(t, linux)
	if why, _, err := f.mgr.RunnerKilled(ctx, "runner-t-ends/dispatch-never"); err != nil || !strings.Contains(why, "Nomad lost it") {
		t.Errorf("unknown child: %q %v, want gone", why, err)
	}
	started := func(name string, job int64) string {
		t.Helper()
		child, err := f.mgr.DispatchRunner(ctx, linux, nomad.Runner{Name: name, GitHubJobID: job, JITConfig: "x"})
		if err != nil {
			t.Fatal(err)
		}
		poll(t, name+" to start", func() bool { a := f.alloc(t, child); return a != nil && f.allocFile(a, "mode") != "" })
		return child
	}
	ended := func(child string) {
		t.Helper()
		poll(t, child+" to end", func() bool {
			a := f.alloc(t, child)
			return a != nil && a.ClientStatus != "pending" && a.ClientStatus != "running"
		})
	}

	exits := started("r-exits", 601)
	if why, running, err := f.mgr.RunnerKilled(ctx, exits); err != nil || why != "" || !running {
		t.Errorf("a running runner: %q running=%v %v, want running and not killed", why, running, err)
	}
	f.release(t, f.alloc(t, exits), "0")
	ended(exits)
	if why, running, err := f.mgr.RunnerKilled(ctx, exits); err != nil || why != "" || running {
		t.Errorf("a runner that exited by itself: %q running=%v %v, want neither killed nor running", why, running, err)
	}

	killed := started("r-killed", 602)
	if err := f.mgr.StopRunner(ctx, killed); err != nil {
		t.Fatal(err)
	}
	ended(killed)
	why, running, err := f.mgr.RunnerKilled(ctx, killed)
	if err != nil || !strings.Contains(why, "killed") || running {
		t.Errorf("a runner stopped mid-run: %q running=%v %v, want killed", why, running, err)
	}
	t.Logf("killed: %s", why)
}
