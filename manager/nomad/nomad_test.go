package nomad_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/nomadtest"
	"github.com/buildfleet/buildfleet/internal/testenv"
	"github.com/buildfleet/buildfleet/manager/nomad"
	nomadspec "github.com/buildfleet/buildfleet/nomad"
)

// fixture is one ACL-enabled dev agent shared by the subtests: admin holds
// the management token (operators: register, eligibility), mgr the token of
// nomad/acl/manager.policy.hcl (what the manager runs with).
type fixture struct {
	ag     *nomadtest.Agent
	admin  *nomad.Client
	mgr    *nomad.Client
	mgrAPI *api.Client
	// rdv is where stand-in runners report (see standIn).
	rdv string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ag := nomadtest.Start(t, nomadtest.Options{ACL: true, Meta: map[string]string{nomad.DefaultTierMetaKey: "quick,refleak"}})
	pol := strings.ReplaceAll(nomadspec.ManagerPolicy, `namespace "buildfleet"`, `namespace "default"`)
	if _, err := ag.Client.ACLPolicies().Upsert(&api.ACLPolicy{Name: "buildfleet-manager", Rules: pol}, nil); err != nil {
		t.Fatalf("manager policy: %v", err)
	}
	tok, _, err := ag.Client.ACLTokens().Create(&api.ACLToken{Name: "mgr", Type: "client", Policies: []string{"buildfleet-manager"}}, nil)
	if err != nil {
		t.Fatalf("manager token: %v", err)
	}
	f := &fixture{ag: ag, rdv: newRDV(t)}
	f.admin = mustClient(t, ag.Addr, ag.Token)
	f.mgr = mustClient(t, ag.Addr, tok.SecretID)
	f.mgrAPI = ag.Client // replaced below with the manager's token
	cfg := api.DefaultConfig()
	cfg.Address, cfg.SecretID = ag.Addr, tok.SecretID
	if f.mgrAPI, err = api.NewClient(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

// newRDV is the dir stand-in runners report in. They run as uids of their
// own (isolate.sh), so it and its parent are open to them.
func newRDV(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustClient(t *testing.T, addr, token string) *nomad.Client {
	t.Helper()
	c, err := nomad.New(config.Nomad{Address: addr, Token: config.Secret(token), Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func hostArch() string {
	if runtime.GOARCH == "arm64" {
		return "aarch64"
	}
	return "x86_64"
}

// standIn is a runner that records what it finds as its JIT config (the
// copy isolate.sh hands it) into the shared dir rdv, then waits for the test
// to write rdv/<alloc>.go (its exit code). It runs as a uid of its own, so
// rdv is world-writable.
func standIn(rdv string) nomad.RenderOptions {
	script := `out="` + rdv + `/$NOMAD_ALLOC_ID"; cat "$JIT_CONFIG_FILE" > "$out.seen"; ` +
		`stat -c %a "$JIT_CONFIG_FILE" > "$out.mode"; ` +
		`while [ ! -s "$out.go" ]; do sleep 0.1; done; exit "$(cat "$out.go")"`
	return nomad.RenderOptions{
		Command:     "/bin/sh",
		Args:        []string{"-c", script},
		Resources:   map[string]nomad.Resources{config.TierQuick: {CPU: 50, MemoryMB: 32}},
		KillTimeout: 2 * time.Second,
	}
}

func (f *fixture) register(t *testing.T, p config.Pool) {
	t.Helper()
	job, err := nomad.RenderPoolJob(p, standIn(f.rdv))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := f.admin.RegisterPool(context.Background(), job)
	if err != nil {
		t.Fatalf("RegisterPool: %v", err)
	}
	t.Logf("registered %+v", ch)
}

// poll calls f every 100ms until it returns true or 60s pass.
func poll(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (f *fixture) alloc(t *testing.T, child string) *api.AllocationListStub {
	t.Helper()
	allocs, _, err := f.ag.Client.Jobs().Allocations(child, true, nil)
	if err != nil || len(allocs) == 0 {
		return nil
	}
	return allocs[0]
}

func (f *fixture) allocFile(a *api.AllocationListStub, name string) string {
	b, _ := os.ReadFile(filepath.Join(f.rdv, a.ID+"."+name))
	return string(b)
}

func (f *fixture) release(t *testing.T, a *api.AllocationListStub, code string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.rdv, a.ID+".go"), []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRunnerPools(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	linux := config.Pool{Name: "t-linux", Platform: "linux-" + hostArch(), Tier: config.TierQuick, NomadJob: "runner-t-linux"}
	// The FreeBSD pool shares the agent's node pool, so that its kernel
	// constraint is what keeps it off the (Linux) agent.
	bsd := config.Pool{Name: "t-freebsd", Platform: "freebsd-x86_64", Tier: config.TierQuick, NomadJob: "runner-t-freebsd", NodePool: nomadtest.HostNodePool()}

	t.Run("example pools render and validate", func(t *testing.T) { testValidateExamples(t, f) })

	t.Run("register is idempotent", func(t *testing.T) {
		job, err := nomad.RenderPoolJob(linux, standIn(f.rdv))
		if err != nil {
			t.Fatal(err)
		}
		ch, err := f.admin.RegisterPool(ctx, job)
		if err != nil || ch.Job != "added" || ch.Policy != "added" {
			t.Fatalf("first register: %+v %v", ch, err)
		}
		ch, err = f.admin.RegisterPool(ctx, job)
		if err != nil || ch.Job != "unchanged" || ch.Policy != "unchanged" {
			t.Fatalf("second register: %+v %v", ch, err)
		}
	})

	t.Run("JIT config reaches only its allocation", func(t *testing.T) {
		const secret = "JIT-SECRET-0f1e2d3c4b5a"
		child, err := f.mgr.DispatchRunner(ctx, linux, nomad.Runner{Name: "r-secret", GitHubJobID: 101, Attempt: 1, JITConfig: secret})
		if err != nil {
			t.Fatalf("DispatchRunner: %v", err)
		}
		var a *api.AllocationListStub
		poll(t, "the runner to record its secrets", func() bool {
			a = f.alloc(t, child)
			return a != nil && f.allocFile(a, "mode") != ""
		})
		if got := f.allocFile(a, "seen"); got != secret {
			t.Errorf("the runner's JIT config = %q, want the JIT config", got)
		}
		if got := strings.TrimSpace(f.allocFile(a, "mode")); got != "400" {
			t.Errorf("the runner's copy of its JIT config has mode %s, want 400", got)
		}
		if st, err := os.Stat(filepath.Join(f.ag.DataDir, "alloc", a.ID, "runner", "secrets", "jit")); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("secrets/jit: %v %v, want mode 600", st, err)
		}

		// Not in the job as read-job sees it, nor in job lists with meta.
		job, _, err := f.mgrAPI.Jobs().Info(child, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := json.Marshal(job); strings.Contains(string(b), secret) {
			t.Errorf("JIT config visible in Jobs().Info(child)")
		}
		if job.Meta[nomad.MetaRunnerName] != "r-secret" || job.Meta[nomad.MetaGitHubJobID] != "101" || len(job.Payload) != 0 {
			t.Errorf("child meta %v payload %q", job.Meta, job.Payload)
		}
		stubs, _, err := f.mgrAPI.Jobs().ListOptions(&api.JobListOptions{Fields: &api.JobListFields{Meta: true}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := json.Marshal(stubs); strings.Contains(string(b), secret) {
			t.Errorf("JIT config visible in job list with meta")
		}
		// Nor in the Job topic of the event stream (read from the start).
		if evs := jobEvents(t, f.mgrAPI, child); strings.Contains(evs, secret) {
			t.Errorf("JIT config visible in Job events")
		} else if !strings.Contains(evs, child) {
			t.Errorf("Job events did not include the child")
		}
		// The manager writes but cannot read configs back.
		path := nomad.RunnerSecretPath("runner-t-linux", "r-secret")
		if _, _, err := f.mgrAPI.Variables().Read(path, nil); err == nil {
			t.Errorf("manager token could read %s", path)
		}
		// Deleting the variable once running leaves the runner alone.
		if err := f.mgr.DeleteRunnerSecret(ctx, linux, "r-secret"); err != nil {
			t.Fatalf("DeleteRunnerSecret: %v", err)
		}
		if v, _, err := f.ag.Client.Variables().Read(path, nil); err == nil && v != nil {
			t.Errorf("variable %s still there", path)
		}
		f.release(t, a, "0")
		poll(t, "the runner to complete", func() bool {
			a = f.alloc(t, child)
			return a.ClientStatus == api.AllocClientStatusComplete
		})
	})

	t.Run("same token dispatches once", func(t *testing.T) {
		r := nomad.Runner{Name: "r-idem", GitHubJobID: 202, Attempt: 1, JITConfig: "x"}
		id1, err := f.mgr.DispatchRunner(ctx, linux, r)
		if err != nil {
			t.Fatal(err)
		}
		id2, err := f.mgr.DispatchRunner(ctx, linux, r)
		if err != nil {
			t.Fatal(err)
		}
		if id1 != id2 {
			t.Errorf("two children for one token: %s, %s", id1, id2)
		}
		kids, _, err := f.mgrAPI.Jobs().List(&api.QueryOptions{Filter: `ParentID == "runner-t-linux" and Meta.github_job_id == "202"`})
		if err == nil && len(kids) != 1 {
			t.Errorf("%d children for GitHub job 202", len(kids))
		}
		poll(t, "the runner to start", func() bool { a := f.alloc(t, id1); return a != nil && f.allocFile(a, "mode") != "" })
		f.release(t, f.alloc(t, id1), "0")
		c, err := f.mgr.PoolCounts(ctx, "runner-t-linux")
		if err != nil || c.Pending+c.Running+c.Dead < 2 {
			t.Errorf("PoolCounts = %+v, %v", c, err)
		}
	})

	t.Run("blocked with a reason, placed when a host becomes eligible", func(t *testing.T) {
		f.register(t, bsd)
		bchild, err := f.mgr.DispatchRunner(ctx, bsd, nomad.Runner{Name: "r-bsd", GitHubJobID: 303, JITConfig: "x"})
		if err != nil {
			t.Fatal(err)
		}
		var why string
		poll(t, "a blocked reason", func() bool { why, _ = f.mgr.BlockedReason(ctx, bchild); return why != "" })
		if want := "no eligible host: constraint ${attr.kernel.name} = freebsd filtered 1 node"; why != want {
			t.Errorf("BlockedReason = %q, want %q", why, want)
		}

		if _, err := f.ag.Client.Nodes().ToggleEligibility(f.ag.NodeID, false, nil); err != nil {
			t.Fatal(err)
		}
		child, err := f.mgr.DispatchRunner(ctx, linux, nomad.Runner{Name: "r-wait", GitHubJobID: 304, JITConfig: "x"})
		if err != nil {
			t.Fatal(err)
		}
		poll(t, "a blocked reason", func() bool { why, _ = f.mgr.BlockedReason(ctx, child); return why != "" })
		t.Logf("ineligible node: %s", why)
		if f.alloc(t, child) != nil {
			t.Fatalf("placed on an ineligible node")
		}
		if _, err := f.ag.Client.Nodes().ToggleEligibility(f.ag.NodeID, true, nil); err != nil {
			t.Fatal(err)
		}
		poll(t, "placement after eligibility", func() bool { a := f.alloc(t, child); return a != nil && f.allocFile(a, "mode") != "" })
		f.release(t, f.alloc(t, child), "0")
		if why, _ := f.mgr.BlockedReason(ctx, child); why != "" {
			t.Errorf("still blocked after placement: %s", why)
		}

		// StopRunner purges the pending child and cancels its blocked eval.
		if err := f.mgr.StopRunner(ctx, bchild); err != nil {
			t.Fatalf("StopRunner: %v", err)
		}
		if _, _, err := f.mgrAPI.Jobs().Info(bchild, nil); err == nil {
			t.Errorf("child %s still readable after purge", bchild)
		}
		if err := f.mgr.StopRunner(ctx, bchild); err != nil {
			t.Errorf("second StopRunner: %v", err)
		}
		if err := f.mgr.DeleteRunnerSecret(ctx, bsd, "r-bsd"); err != nil {
			t.Errorf("DeleteRunnerSecret: %v", err)
		}
	})

	t.Run("donor pause and drain commands", func(t *testing.T) { testDonorCommands(t, f, linux) })
	t.Run("a bare drain -disable wakes waiting runners", func(t *testing.T) { testBareUndrainWithWatcher(t, f, linux) })
	t.Run("watch follows a runner and resumes from an index", func(t *testing.T) { testWatch(t, f, linux, bsd) })
	t.Run("how a runner ended", func(t *testing.T) { testRunnerKilled(t, f, linux) })
}

// jobEvents reads the Job topic from the start until child's registration
// and returns the raw JSON of what it saw.
func jobEvents(t *testing.T, c *api.Client, child string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := c.EventStream().Stream(ctx, map[api.Topic][]string{api.TopicJob: {"*"}}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for evs := range ch {
		if evs.Err != nil {
			t.Fatalf("event stream: %v", evs.Err)
		}
		for _, e := range evs.Events {
			b, _ := json.Marshal(e)
			all.Write(b)
			if e.Key == child {
				return all.String()
			}
		}
	}
	t.Fatalf("no Job event for %s", child)
	return ""
}

func testValidateExamples(t *testing.T, f *fixture) {
	root, _ := filepath.Abs("../..")
	bin := testenv.NomadBinary(t)
	cfg := loadExample(t, filepath.Join(root, "config", "example.yaml"))
	dir := t.TempDir()
	var nodePools []string
	for _, p := range cfg.Pools {
		nodePools = append(nodePools, p.NodePool)
	}
	if _, err := f.admin.EnsurePrerequisites(context.Background(), "default", nodePools); err != nil {
		t.Fatal(err)
	}
	for _, p := range cfg.Pools {
		hcl, err := nomad.RenderPoolHCL(p, nomad.RenderOptions{})
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		file := filepath.Join(dir, p.Name+".nomad.hcl")
		if err := os.WriteFile(file, []byte(hcl), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "job", "validate", file)
		cmd.Env = append(os.Environ(), "NOMAD_ADDR="+f.ag.Addr, "NOMAD_TOKEN="+f.ag.Token)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("nomad job validate %s: %v\n%s\n%s", p.Name, err, out, hcl)
			continue
		}
		// The HCL and the Go job are the same job.
		parsed, err := f.ag.Client.Jobs().ParseHCLOpts(&api.JobsParseRequest{JobHCL: hcl, Canonicalize: true})
		if err != nil {
			t.Fatalf("parse %s: %v", p.Name, err)
		}
		built, err := nomad.RenderPoolJob(p, nomad.RenderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		built.Canonicalize()
		// The HCL parser fills in the agent's region; the Go job leaves it to
		// the client's config at registration.
		built.Region = parsed.Region
		a, _ := json.MarshalIndent(parsed, "", " ")
		b, _ := json.MarshalIndent(built, "", " ")
		if string(a) != string(b) {
			t.Errorf("pool %s: HCL and Go jobs differ:\n%s", p.Name, lineDiff(string(a), string(b)))
		}
	}
}

func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, "hcl: "+x, "go:  "+y)
			if len(out) > 20 {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
