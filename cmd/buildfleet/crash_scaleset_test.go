package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/buildfleet/buildfleet/internal/ghsim"
)

// TestKillNineScaleSetSession kills the manager with SIGKILL while its
// scale set's session is open and the request's job is acquired, and
// restarts it on the same store: the stale session (which GitHub keeps,
// 409 to a new one) is deleted and replaced, the job stays assigned to the
// set, nothing is dispatched twice, and a graceful stop deletes the new
// session. No workflow_job webhook is configured: the set's queue is the
// pool's only source.
func TestKillNineScaleSetSession(t *testing.T) {
	bin := buildBinary(t)
	gh := ghsim.New(ghsim.Options{})
	if _, err := gh.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	wf, _ := filepath.Abs("../../workflows")
	must(t, gh.CreateRepo(ghsim.RepoSpec{Owner: "python", Name: "cpython", Org: true, WorkflowsDir: wf}))
	must(t, gh.AddCollaborator("python/cpython", "triager", "triage"))
	pr, err := gh.OpenPR("python/cpython", ghsim.PRSpec{Author: "contributor", Fork: "contributor", HeadSHA: strings.Repeat("5a", 20)})
	must(t, err)

	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "c.yaml")
	must(t, os.WriteFile(cfg, []byte(`
listen: `+addr+`
store: {path: `+filepath.Join(dir, "bf.db")+`}
github: {api_url: "`+gh.URL()+`/", token: t, webhook_secret: crash-secret}
nomad: {address: "http://127.0.0.1:1"}
repositories: [{name: python/cpython, workflow: quick-demo.yml}]
pools:
  - {name: q, platform: linux-x86_64, tier: quick, labels: [linux], stable: true, source: scaleset}
  - {name: r, platform: linux-x86_64, tier: refleak, labels: [linux, refleak], stable: true}
`), 0o600))
	_, err = gh.AddHook("python/cpython", "http://"+addr+"/webhook", "crash-secret", []string{"pull_request"})
	must(t, err)

	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--config", cfg)
		cmd.Stderr = &prefixWriter{t: t}
		must(t, cmd.Start())
		waitHealthy(t, addr)
		return cmd
	}
	var set int
	session := func() string { set = gh.ScaleSetByName("python/cpython", "q"); return gh.ScaleSetSession(set) }
	cmd := start()
	waitFor(t, "the scale set's session", func() bool { return session() != "" })
	must(t, gh.LabelPR("python/cpython", pr, "🔨 test-with-buildbots", "triager"))
	// Nomad is unreachable: the fleet acquires the job, then waits.
	waitFor(t, "the job assigned to the set", func() bool { return gh.ScaleSetStatistics(set)["totalAssignedJobs"] == 1 })
	stale := session()
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	if s := session(); s != stale {
		t.Fatalf("session %q after the kill, want the stale %q kept by GitHub", s, stale)
	}

	cmd = start()
	waitFor(t, "a new session in place of the stale one", func() bool { s := session(); return s != "" && s != stale })
	if st := gh.ScaleSetStatistics(set); st["totalAssignedJobs"] != 1 || st["totalAvailableJobs"] != 0 {
		t.Errorf("statistics %v, want the one job still assigned", st)
	}
	if n := count(gh, "POST", "/dispatches"); n != 1 {
		t.Errorf("%d dispatches, want exactly 1", n)
	}
	must(t, cmd.Process.Signal(syscall.SIGTERM))
	_ = cmd.Wait()
	if s := session(); s != "" {
		t.Errorf("session %q left after a graceful stop", s)
	}
}
