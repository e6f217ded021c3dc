package nomad_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/testenv"
	"github.com/buildfleet/buildfleet/manager/nomad"
)

// testDonorCommands runs the pause and drain commands of docs/donors.md
// with the nomad CLI against the agent, with a build running and one
// waiting: a drain keeps the running build and takes no new one;
// `eligibility -enable` is refused while the drain is set; a drain
// disabled with -keep-ineligible and eligibility enabled places the
// waiting build at once (a bare `drain -disable` marks the node eligible
// without waking builds that already wait: Nomad 1.10 unblocks them only
// on an eligibility change).
func testDonorCommands(t *testing.T, f *fixture, linux config.Pool) {
	ctx := context.Background()
	t.Cleanup(func() { undrain(t, f) })
	nomadCLI := func(args ...string) (string, error) {
		cmd := exec.Command(testenv.NomadBinary(t), args...)
		cmd.Env = append(os.Environ(), "NOMAD_ADDR="+f.ag.Addr, "NOMAD_TOKEN="+f.ag.Token)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	running, err := f.mgr.DispatchRunner(ctx, linux, nomad.Runner{Name: "r-drain-1", GitHubJobID: 501, Attempt: 1, JITConfig: "x"})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "the first build to run", func() bool {
		a := f.alloc(t, running)
		return a != nil && a.ClientStatus == "running" && f.allocFile(a, "mode") != ""
	})

	if out, err := nomadCLI("node", "drain", "-enable", "-self", "-deadline", "5h", "-detach"); err != nil {
		t.Fatalf("nomad node drain -enable: %v\n%s", err, out)
	}
	waiting, err := f.mgr.DispatchRunner(ctx, linux, nomad.Runner{Name: "r-drain-2", GitHubJobID: 502, Attempt: 1, JITConfig: "x"})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "the second build to wait for a host", func() bool {
		why, err := f.mgr.BlockedReason(ctx, waiting)
		return err == nil && why != ""
	})
	if f.alloc(t, waiting) != nil {
		t.Fatal("a build was placed on a draining host")
	}
	if a := f.alloc(t, running); a == nil || a.ClientStatus != "running" || a.DesiredStatus != "run" {
		t.Fatalf("the running build did not keep running on the draining host: %+v", a)
	}
	if out, err := nomadCLI("node", "eligibility", "-enable", "-self"); err == nil {
		t.Errorf("nomad node eligibility -enable succeeded on a draining node:\n%s", out)
	}

	// Undo the drain as documented: the waiting build places at once.
	if out, err := nomadCLI("node", "drain", "-disable", "-keep-ineligible", "-self"); err != nil {
		t.Fatalf("nomad node drain -disable -keep-ineligible: %v\n%s", err, out)
	}
	if out, err := nomadCLI("node", "eligibility", "-enable", "-self"); err != nil {
		t.Fatalf("nomad node eligibility -enable: %v\n%s", err, out)
	}
	poll(t, "the waiting build placed after the drain is undone", func() bool {
		a := f.alloc(t, waiting)
		return a != nil && f.allocFile(a, "mode") != ""
	})
	f.release(t, f.alloc(t, running), "0")
	f.release(t, f.alloc(t, waiting), "0")
	n, _, err := f.ag.Client.Nodes().Info(f.ag.NodeID, nil)
	if err != nil || n.SchedulingEligibility != "eligible" || n.DrainStrategy != nil {
		t.Errorf("node after the commands: %v %+v", err, n)
	}
	if out, err := nomadCLI("node", "status", "-self"); err != nil || !strings.Contains(out, f.ag.NodeID[:8]) {
		t.Errorf("nomad node status -self: %v\n%s", err, out)
	}
}

// testBareUndrainWithWatcher: with the manager watching, even a bare
// `nomad node drain -disable -self` (no -keep-ineligible, no eligibility
// step) places the build that waited during the drain: the watcher sees
// the host become eligible again and re-evaluates the waiting runner.
func testBareUndrainWithWatcher(t *testing.T, f *fixture, linux config.Pool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t.Cleanup(func() { undrain(t, f) })
	updates := f.mgr.Watch(ctx, 0)
	blocked := make(chan string, 16)
	go func() {
		for u := range updates {
			if u.State == nomad.StateBlocked {
				select {
				case blocked <- u.RunnerName:
				default:
				}
			}
		}
	}()
	nomadCLI := func(args ...string) (string, error) {
		cmd := exec.Command(testenv.NomadBinary(t), args...)
		cmd.Env = append(os.Environ(), "NOMAD_ADDR="+f.ag.Addr, "NOMAD_TOKEN="+f.ag.Token)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	running, err := f.mgr.DispatchRunner(ctx, linux, nomad.Runner{Name: "r-bare-1", GitHubJobID: 601, Attempt: 1, JITConfig: "x"})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "the first build to run", func() bool {
		a := f.alloc(t, running)
		return a != nil && a.ClientStatus == "running" && f.allocFile(a, "mode") != ""
	})
	if out, err := nomadCLI("node", "drain", "-enable", "-self", "-deadline", "5h", "-detach"); err != nil {
		t.Fatalf("nomad node drain -enable: %v\n%s", err, out)
	}
	waiting, err := f.mgr.DispatchRunner(ctx, linux, nomad.Runner{Name: "r-bare-2", GitHubJobID: 602, Attempt: 1, JITConfig: "x"})
	if err != nil {
		t.Fatal(err)
	}
	for name := ""; name != "r-bare-2"; {
		select {
		case name = <-blocked:
		case <-time.After(60 * time.Second):
			t.Fatal("the watcher never saw the second build wait")
		}
	}
	if out, err := nomadCLI("node", "drain", "-disable", "-self"); err != nil {
		t.Fatalf("nomad node drain -disable: %v\n%s", err, out)
	}
	poll(t, "the waiting build placed after a bare drain -disable", func() bool {
		a := f.alloc(t, waiting)
		return a != nil && f.allocFile(a, "mode") != ""
	})
	f.release(t, f.alloc(t, running), "0")
	f.release(t, f.alloc(t, waiting), "0")
}

// undrain leaves the agent's node as the next subtest expects it: no
// drain, eligible.
func undrain(t *testing.T, f *fixture) {
	nodes := f.ag.Client.Nodes()
	if _, err := nodes.UpdateDrainOpts(f.ag.NodeID, &api.DrainOptions{MarkEligible: true}, nil); err != nil {
		t.Errorf("undrain: %v", err)
	}
	if _, err := nodes.ToggleEligibility(f.ag.NodeID, true, nil); err != nil {
		t.Errorf("eligibility: %v", err)
	}
}
