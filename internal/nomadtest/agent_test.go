package nomadtest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/buildfleet/buildfleet/internal/testenv"
)

// TestAgentRunsRawExecAndCleansUp starts an agent, runs a raw_exec batch job
// to completion, stops the agent and checks nothing is left behind.
func TestAgentRunsRawExecAndCleansUp(t *testing.T) {
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "NomadClient*"))
	a, err := start(testenv.NomadBinary(t), Options{NodePool: "donor-test", Meta: map[string]string{"buildfleet_tiers": "quick"}, NodeMaxAllocs: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()

	node, _, err := a.Client.Nodes().Info(a.NodeID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if node.NodePool != "donor-test" || node.Meta["buildfleet_tiers"] != "quick" {
		t.Errorf("node pool %q meta %v; want donor-test and buildfleet_tiers=quick", node.NodePool, node.Meta)
	}

	job := api.NewBatchJob("hello", "hello", "global", 50)
	job.NodePool = strPtr("donor-test")
	tg := api.NewTaskGroup("g", 1)
	task := api.NewTask("t", "raw_exec")
	task.Config = map[string]any{"command": "/bin/sh", "args": []string{"-c", "echo hi"}}
	tg.AddTask(task)
	job.AddTaskGroup(tg)
	if _, _, err := a.Client.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		allocs, _, err := a.Client.Jobs().Allocations("hello", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(allocs) == 1 && allocs[0].ClientStatus == api.AllocClientStatusComplete {
			break
		}
		if len(allocs) == 1 && allocs[0].ClientStatus == api.AllocClientStatusFailed {
			t.Fatalf("raw_exec alloc failed: %+v", allocs[0].TaskStates)
		}
		if time.Now().After(deadline) {
			t.Fatalf("raw_exec job did not complete: %+v", allocs)
		}
		time.Sleep(100 * time.Millisecond)
	}

	dir := a.DataDir
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data dir %s still exists after Stop (err %v)", dir, err)
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "NomadClient*"))
	if len(after) > len(before) {
		t.Errorf("NomadClient* folders left behind: %v", after)
	}
}

func TestAgentWithACL(t *testing.T) {
	a := Start(t, Options{ACL: true})
	if a.Token == "" {
		t.Fatal("no management token after bootstrap")
	}
	anon, err := api.NewClient(&api.Config{Address: a.Addr})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := anon.Jobs().List(nil); err == nil {
		t.Error("anonymous job list succeeded with ACLs on; want 403")
	}
	if _, _, err := a.Client.Jobs().List(nil); err != nil {
		t.Errorf("management job list: %v", err)
	}
}

func strPtr(s string) *string { return &s }
