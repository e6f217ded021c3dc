package nomad_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/nomad"
)

// The example config's FreeBSD pool runs github-act-runner: GitHub ships no
// runner for FreeBSD. Its job is the one every Unix pool gets (isolate.sh,
// then the bootstrap that downloads and verifies the archive named in
// dispatch meta) and says which runner it runs.
func TestExampleFreeBSDPoolRunsActRunner(t *testing.T) {
	cfg := loadExample(t, filepath.Join("..", "..", "config", "example.yaml"))
	var bsd *config.Pool
	for i, p := range cfg.Pools {
		if strings.HasPrefix(p.Platform, "freebsd-") {
			bsd = &cfg.Pools[i]
		}
	}
	if bsd == nil {
		t.Fatal("the example has no FreeBSD pool")
	}
	if bsd.Runner != config.RunnerActRunner {
		t.Fatalf("FreeBSD pool runner = %q, want %q", bsd.Runner, config.RunnerActRunner)
	}
	job, err := nomad.RenderPoolJob(*bsd, nomad.RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := job.Meta[nomad.MetaRunnerKind]; got != config.RunnerActRunner {
		t.Errorf("parent meta %s = %q, want %q", nomad.MetaRunnerKind, got, config.RunnerActRunner)
	}
	task := job.TaskGroups[0].Tasks[0]
	args := strings.Join(task.Config["args"].([]string), " ")
	if task.Config["command"] != "/bin/sh" || !strings.Contains(args, "isolate.sh --bootstrap ${NOMAD_TASK_DIR}/run-runner.sh") {
		t.Errorf("task runs %v %s, want isolate.sh with the bootstrap", task.Config["command"], args)
	}
	hcl, err := nomad.RenderPoolHCL(*bsd, nomad.RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hcl, `buildfleet_runner = "act-runner"`) || !strings.Contains(hcl, `value     = "freebsd"`) {
		t.Errorf("HCL of the FreeBSD pool:\n%s", hcl)
	}
	// Pools on platforms GitHub ships a runner for run GitHub's.
	for _, p := range cfg.Pools {
		if p.Platform != bsd.Platform && p.Runner != config.RunnerActions {
			t.Errorf("pool %s (%s) runs %q, want %q", p.Name, p.Platform, p.Runner, config.RunnerActions)
		}
	}
}
