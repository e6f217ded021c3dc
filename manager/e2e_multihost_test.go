package manager

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/ghsim"
	"github.com/buildfleet/buildfleet/internal/nomadtest"
	"github.com/buildfleet/buildfleet/internal/testenv"
	"github.com/buildfleet/buildfleet/manager/nomad"
)

// buildfleetBinary builds cmd/buildfleet once per test process: the
// multi-host test configures donors and applies the pool jobs with the
// commands an operator and a donor run.
var buildfleetBinary = sync.OnceValues(func() (string, error) {
	if _, err := ghsimBinary(); err != nil { // makes ghsimDir, removed by TestMain
		return "", err
	}
	out := filepath.Join(ghsimDir, "buildfleet")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/buildfleet")
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{string(b), err}
	}
	return out, nil
})

// holdWorkflow is quick-demo.yml's interface with one step that holds the
// build until the test releases it: it records the allocation it runs in
// (the runner's environment carries NOMAD_ALLOC_ID) and waits for
// $HOLD/<pr>.go.
const holdWorkflow = `name: hold
run-name: "buildfleet ${{ inputs.request_id }}: PR #${{ inputs.pr }} (${{ inputs.tier }})"
on:
  workflow_dispatch:
    inputs:
      pr: {required: true, type: string}
      sha: {required: true, type: string}
      tier: {required: true, type: string}
      request_id: {required: true, type: string}
      builders: {required: true, type: string}
jobs:
  build:
    name: ${{ matrix.builder.name }}
    runs-on: ${{ matrix.builder.labels }}
    strategy:
      matrix:
        builder: ${{ fromJSON(inputs.builders) }}
    env:
      PR: ${{ inputs.pr }}
    steps:
      - name: Hold
        shell: bash
        run: |
          echo "$NOMAD_ALLOC_ID" > "HOLDDIR/$PR.started"
          for i in $(seq 1200); do [ -e "HOLDDIR/$PR.go" ] && exit 0; sleep 0.1; done
          exit 1
`

// hostFleet is the multi-host test's world: the cluster, ghsim, the manager.
type hostFleet struct {
	*harness
	c    *nomadtest.Cluster
	bin  string
	hold string
	ids  string
	shas map[int]string
}

// donorConfig runs `buildfleet donor config` as a donor would.
func (f *hostFleet) donorConfig(t *testing.T, name string, tiers string) []byte {
	t.Helper()
	args := []string{"donor", "config", "--platform", f.cfg.Pools[0].Platform, "--tiers", tiers, "--slots", "2",
		"--owner", "Donor " + name, "--contact", name + "@example.org", "--servers", f.c.RPC, "--name", name}
	t.Logf("donor %s: buildfleet %s", name, strings.Join(args, " "))
	out, err := exec.Command(f.bin, args...).Output()
	if err != nil {
		t.Fatalf("buildfleet donor config: %v", err)
	}
	return out
}

// label opens a PR and labels it; each build of this test has its own PR,
// so that a new request never supersedes a held one.
func (f *hostFleet) label(t *testing.T, label string) int {
	t.Helper()
	sha := fmt.Sprintf("%040x", time.Now().UnixNano())
	n, err := f.gh.OpenPR(e2eRepo, ghsim.PRSpec{Title: "gh-2: multi-host", Author: "contributor", Fork: "contributor", HeadSHA: sha})
	if err != nil {
		t.Fatal(err)
	}
	f.shas[n] = sha
	if err := f.gh.LabelPR(e2eRepo, n, label, "triager"); err != nil {
		t.Fatal(err)
	}
	return n
}

// allocOf waits until PR n's build holds and returns its allocation.
func (f *hostFleet) allocOf(t *testing.T, n int) *api.Allocation {
	t.Helper()
	var id string
	waitFor(t, fmt.Sprintf("the build of PR %d to start", n), 120*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(f.hold, fmt.Sprint(n)+".started"))
		id = strings.TrimSpace(string(b))
		return err == nil && id != ""
	})
	a, _, err := f.c.Server.Client.Allocations().Info(id, nil)
	if err != nil {
		t.Fatalf("allocation %s: %v", id, err)
	}
	return a
}

func (f *hostFleet) release(t *testing.T, n int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.hold, fmt.Sprint(n)+".go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// result waits for the final status of PR n's builder of pool.
func (f *hostFleet) result(t *testing.T, n int, pool string) ghStatus {
	t.Helper()
	var v struct {
		Statuses []ghStatus `json:"statuses"`
	}
	var final ghStatus
	waitFor(t, fmt.Sprintf("the result of PR %d", n), 60*time.Second, func() bool {
		f.getJSON("/_ghsim/repos/"+e2eRepo+"/commits/"+f.shas[n], &v)
		for _, s := range v.Statuses {
			if s.State != "pending" && s.Context == "buildfleet/"+pool {
				final = s
				return true
			}
		}
		return false
	})
	return final
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFleetAcrossHosts is the fleet as donors and an operator set it up:
// a Nomad server and three client agents, each started from the output of
// `buildfleet donor config` and joined over mutual TLS (each in a network
// namespace of its own when the test runs as root), the pool jobs applied
// with `buildfleet nomad apply` against the server's TLS address, and the
// manager connected over TLS. Donor a builds quick, b refleak only; c,
// started later, lists both.
//
//   - A quick build lands on a and a refleak build on b, never the other;
//     the refleak request's builder of a pool with min_isolation container
//     lands nowhere (every donor here declares user) and Nomad says so.
//   - a is drained (`nomad node drain -enable -self`, as documented) while
//     its build runs: the build goes on; a new quick build does not go to a,
//     nor to b (refleak only), and waits; once c joins listing quick, it
//     runs there. When a's build is released it succeeds and the drain
//     completes (the drain command returns).
//   - b's agent gets SIGINT while its build runs: it drains and waits; once
//     the build is released it succeeds, and b leaves at once, not at the
//     drain deadline (5h).
//   - Every runner ran as a uid of its own, no group 0, and an environment
//     without the agent's variables (checked from inside the task).
func TestFleetAcrossHosts(t *testing.T) {
	c := nomadtest.StartCluster(t, nomadtest.ClusterOptions{Clients: 3})
	if c.Netns {
		t.Log("each donor runs in a network namespace of its own")
	} else {
		t.Logf("donors are not in network namespaces of their own: %s", c.NoNetnsReason)
	}
	bin, err := buildfleetBinary()
	if err != nil {
		t.Fatalf("building buildfleet: %v", err)
	}
	ghsimBin, err := ghsimBinary()
	if err != nil {
		t.Fatal(err)
	}
	f := &hostFleet{c: c, bin: bin, hold: runnerDir(t, 0o1777), ids: runnerDir(t, 0o1777), shas: map[int]string{}}

	// GitHub (ghsim) where the runners in other namespaces reach it.
	wf := runnerDir(t, 0o755)
	if err := os.WriteFile(filepath.Join(wf, "hold.yml"), []byte(strings.ReplaceAll(holdWorkflow, "HOLDDIR", f.hold)), 0o644); err != nil {
		t.Fatal(err)
	}
	gh := ghsim.New(ghsim.Options{})
	if _, err := gh.Start(c.HostIP + ":0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gh.Close() })
	if err := gh.CreateRepo(ghsim.RepoSpec{Owner: "python", Name: "cpython", Org: true, WorkflowsDir: wf}); err != nil {
		t.Fatal(err)
	}
	if err := gh.AddCollaborator(e2eRepo, "triager", "triage"); err != nil {
		t.Fatal(err)
	}
	gh.AddUser("contributor")

	cfg := e2eConfig(t, gh.URL())
	cfg.Repositories = []config.Repository{{Name: e2eRepo, Workflow: "hold.yml"}}
	cfg.Nomad.Address = c.Server.Addr
	cfg.Nomad.Namespace = "default"
	cfg.Nomad.CAFile, cfg.Nomad.ClientCertFile, cfg.Nomad.ClientKeyFile = c.CA.CertFile, c.CLI.CertFile, c.CLI.KeyFile
	pools := fleetPools()
	refleak := pools[3]
	refleak.Labels = append(refleak.Labels, "plain")
	// A refleak pool that asks for containers: no donor here has them.
	contained := pools[3]
	contained.Name, contained.MinIsolation = "linux-refleak-container", config.IsolationContainer
	contained.Labels = append(append([]string(nil), pools[3].Labels...), "container")
	cfg.Pools = []config.Pool{pools[0], refleak, contained}
	cfg.ApplyDefaults()
	f.harness = &harness{t: t, gh: gh, cfg: cfg, recoverEvery: -1}

	// The donors, from `buildfleet donor config`.
	a := c.StartClient(t, "donor-a", f.donorConfig(t, "donor-a", "quick"))
	b := c.StartClient(t, "donor-b", f.donorConfig(t, "donor-b", "refleak"))
	nodeName := map[string]string{a.NodeID: "donor-a", b.NodeID: "donor-b"}

	// The operator applies the pool jobs over TLS.
	script := filepath.Join(runnerDir(t, 0o755), "runner.sh")
	body := "#!/bin/sh\nGHSIM=" + ghsimBin + "\nIDS=" + f.ids + "\n" + runnerPrelude +
		"env > \"$IDS/$NOMAD_ALLOC_ID.env\"\nexec \"$GHSIM\" runner\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { checkRunnerIDs(t, f.ids) })
	cfgFile := writeFleetConfig(t, cfg)
	apply := exec.Command(bin, "--config", cfgFile, "nomad", "apply", "--runner-command", "/bin/sh", "--runner-arg", script)
	if out, err := apply.CombinedOutput(); err != nil {
		t.Fatalf("buildfleet nomad apply: %v\n%s", err, out)
	} else {
		t.Logf("buildfleet nomad apply:\n%s", out)
	}

	// The manager, over TLS.
	f.start()
	if _, err := gh.AddHook(e2eRepo, "http://"+f.m.Addr().String()+"/webhook", e2eSecret, []string{"pull_request", "workflow_job", "workflow_run"}); err != nil {
		t.Fatal(err)
	}
	const refleakLabel = "🔨 test-with-refleak-buildbots"

	// Placement by pool and tier.
	q1 := f.label(t, quick)
	if al := f.allocOf(t, q1); nodeName[al.NodeID] != "donor-a" {
		t.Fatalf("quick build on %s, want donor-a", nodeName[al.NodeID])
	}
	r1 := f.label(t, refleakLabel)
	var reason string
	if al := f.allocOf(t, r1); nodeName[al.NodeID] != "donor-b" {
		t.Fatalf("refleak build on %s, want donor-b", nodeName[al.NodeID])
	}

	// The refleak request's other builder needs container isolation: no
	// donor declares it (raw_exec hosts declare user), so it waits.
	waitFor(t, "the container builder to wait for a host", 60*time.Second, func() bool {
		reason = f.blockedReason(t, r1, contained.Name)
		return reason != ""
	})
	if !strings.Contains(reason, "${meta.buildfleet_isolation}") {
		t.Errorf("container builder waits because %q, want the hosts filtered by isolation", reason)
	}

	// Drain a mid-build, with the documented command, which follows the
	// drain until it completes.
	var drainOut strings.Builder
	drain := exec.Command(testenv.NomadBinary(t), "node", "drain", "-enable", "-self", "-deadline", "5h")
	drain.Env = append(os.Environ(), c.ClientEnv()...)
	drain.Env = append(drain.Env, "NOMAD_ADDR="+a.Addr)
	drain.Stdout, drain.Stderr = &drainOut, &drainOut
	if err := drain.Start(); err != nil {
		t.Fatal(err)
	}
	drained := make(chan error, 1)
	go func() { drained <- drain.Wait() }()
	t.Cleanup(func() { _ = drain.Process.Kill() })
	waitFor(t, "donor-a draining", 30*time.Second, func() bool {
		n, _, err := c.Server.Client.Nodes().Info(a.NodeID, nil)
		return err == nil && n.DrainStrategy != nil
	})

	// A new quick build: a is draining and b builds refleak only, so it
	// waits, and Nomad says why.
	q2 := f.label(t, quick)
	waitFor(t, "the second quick build to wait for a host", 60*time.Second, func() bool {
		reason = f.blockedReason(t, q2, "linux-quick")
		return reason != ""
	})
	if !strings.Contains(reason, "${meta.buildfleet_tiers} set_contains quick") {
		t.Errorf("second quick build waits because %q, want donor-b filtered by the tier constraint", reason)
	}
	if _, err := os.Stat(filepath.Join(f.hold, fmt.Sprint(q2)+".started")); err == nil {
		t.Fatalf("second quick build started while no donor should take it")
	}
	// donor-c joins, listing quick: the waiting build goes there.
	cc := c.StartClient(t, "donor-c", f.donorConfig(t, "donor-c", "quick,refleak"))
	nodeName[cc.NodeID] = "donor-c"
	if al := f.allocOf(t, q2); nodeName[al.NodeID] != "donor-c" {
		t.Fatalf("second quick build on %s, want donor-c", nodeName[al.NodeID])
	}

	// a's build still runs; released, it succeeds and the drain completes.
	select {
	case err := <-drained:
		t.Fatalf("drain returned before a's build ended: %v\n%s", err, drainOut.String())
	default:
	}
	f.release(t, q1)
	if s := f.result(t, q1, "linux-quick"); s.State != "success" {
		t.Errorf("drained donor's build: %+v, want success", s)
	}
	select {
	case err := <-drained:
		if err != nil {
			t.Errorf("nomad node drain: %v\n%s", err, drainOut.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the drain of donor-a did not complete after its last build ended:\n%s", drainOut.String())
	}
	t.Logf("nomad node drain -enable -self:\n%s", drainOut.String())
	f.release(t, q2)
	if s := f.result(t, q2, "linux-quick"); s.State != "success" {
		t.Errorf("build on donor-c: %+v, want success", s)
	}

	// b's agent is stopped (SIGINT) mid-build: it drains, waits for the
	// build, then leaves.
	if err := b.Interrupt(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "donor-b draining on shutdown", 30*time.Second, func() bool {
		n, _, err := c.Server.Client.Nodes().Info(b.NodeID, nil)
		return err == nil && n.DrainStrategy != nil
	})
	select {
	case <-b.Exited():
		t.Fatal("donor-b left before its build ended")
	default:
	}
	f.release(t, r1)
	if s := f.result(t, r1, "linux-refleak"); s.State != "success" {
		t.Errorf("build on the stopping donor: %+v, want success", s)
	}
	select {
	case <-b.Exited():
	case <-time.After(60 * time.Second):
		t.Fatal("donor-b still running 60s after its last build ended (drain deadline 5h)")
	}

	// From inside every task: no agent variable, no secret.
	envs, _ := filepath.Glob(filepath.Join(f.ids, "*.env"))
	if len(envs) != 3 {
		t.Errorf("%d runner environments recorded, want 3", len(envs))
	}
	for _, e := range envs {
		b, _ := os.ReadFile(e)
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, "=")
			if strings.Contains(v, "eyJ") || k == "NOMAD_TOKEN" || k == "NOMAD_SECRETS_DIR" || strings.HasPrefix(k, "NOMAD_CLIENT") ||
				k == "NOMAD_CACERT" || strings.HasPrefix(k, "BUILDFLEET_") {
				t.Errorf("runner environment %s has %s", filepath.Base(e), k)
			}
		}
	}
}

// blockedReason is why PR n's runner waits for a host, from the runner
// rows of the manager and Nomad's blocked evaluation.
func (f *hostFleet) blockedReason(t *testing.T, n int, pool string) string {
	t.Helper()
	reqs, err := f.m.store.ListRequests(context.Background(), 20)
	if err != nil {
		return ""
	}
	for _, r := range reqs {
		if r.PR != n {
			continue
		}
		rs, _ := f.m.store.RunnersOfRequest(context.Background(), r.ID)
		for _, row := range rs {
			if row.NomadJobID == "" || row.Pool != pool {
				continue
			}
			nc, err := nomad.New(f.cfg.Nomad)
			if err != nil {
				t.Fatal(err)
			}
			why, _ := nc.BlockedReason(context.Background(), row.NomadJobID)
			return why
		}
	}
	return ""
}

// writeFleetConfig writes cfg as the YAML file the CLI reads.
func writeFleetConfig(t *testing.T, cfg config.Config) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\npublic_url: %s\nstore:\n  path: %s\n", cfg.PublicURL, cfg.Store.Path)
	fmt.Fprintf(&b, "github:\n  api_url: %s\n  token: ghs_e2e\n  webhook_secret: %s\n", cfg.GitHub.APIURL, e2eSecret)
	fmt.Fprintf(&b, "nomad:\n  address: %s\n  namespace: %s\n  ca_file: %s\n  client_cert_file: %s\n  client_key_file: %s\n",
		cfg.Nomad.Address, cfg.Nomad.Namespace, cfg.Nomad.CAFile, cfg.Nomad.ClientCertFile, cfg.Nomad.ClientKeyFile)
	fmt.Fprintf(&b, "repositories:\n")
	for _, r := range cfg.Repositories {
		fmt.Fprintf(&b, "  - name: %s\n    workflow: %s\n", r.Name, r.Workflow)
	}
	fmt.Fprintf(&b, "pools:\n")
	for _, p := range cfg.Pools {
		fmt.Fprintf(&b, "  - name: %s\n    platform: %s\n    tier: %s\n    stable: true\n    nomad_job: %s\n    min_isolation: %s\n    labels: [%s]\n",
			p.Name, p.Platform, p.Tier, p.NomadJob, p.MinIsolation, strings.Join(p.Labels, ", "))
	}
	path := filepath.Join(t.TempDir(), "buildfleet.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
