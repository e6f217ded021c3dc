package nomad_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/nomadtest"
	"github.com/buildfleet/buildfleet/internal/testenv"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/nomad/donor"
)

// TestDonorHostTakesItsPoolsRunners starts an agent from the exact output
// of `buildfleet donor config` for a pool (over mutual TLS, certificates
// of a test CA in the files' places), registers pool jobs rendered from
// the same config, and checks both sides of the one derivation: the
// pool's runner places on the donor; a pool of a tier the host does not
// list, and one whose min_isolation is above the host's, stay blocked;
// PoolHosts says so with the scheduler's reasons; and the nomad CLI
// reaches the donor with the variables docs/donors.md gives.
func TestDonorHostTakesItsPoolsRunners(t *testing.T) {
	plat := "linux-" + hostArch()
	pool := func(name, tier, minIso string) config.Pool {
		return config.Pool{Name: name, Platform: plat, Tier: tier, NomadJob: "runner-" + name, MinIsolation: minIso}
	}
	hostPools := config.Config{Pools: []config.Pool{pool("quick", "quick", "user")}}
	hostPools.ApplyDefaults()
	// The dev agent is its own server; the donor's servers entry is an
	// address nothing listens on, so the client cannot join another agent.
	unused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := unused.Addr().String()
	unused.Close()
	o, err := donor.Options{Platform: plat, Tiers: []string{"quick"}, Slots: 2, Owner: "Jane", Contact: "jane@example.org",
		Servers: []string{nowhere}, Name: "donor-1"}.ForFleet(hostPools)
	if err != nil {
		t.Fatal(err)
	}
	hcl, err := donor.Render(o)
	if err != nil {
		t.Fatal(err)
	}
	ca := nomadtest.NewCA(t)
	ag := nomadtest.Start(t, nomadtest.Options{ConfigHCL: string(hcl), TLS: ca})
	admin, err := nomad.New(config.Nomad{Address: ag.Addr, Namespace: "default", CAFile: ca.CertFile,
		ClientCertFile: ag.CLI.CertFile, ClientKeyFile: ag.CLI.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	fleet := config.Config{Pools: []config.Pool{
		pool("quick", "quick", "user"),
		pool("refleak", "refleak", ""),
		pool("strict", "quick", "container"),
	}}
	fleet.ApplyDefaults()
	var nodePools []string
	for _, p := range fleet.Pools {
		nodePools = append(nodePools, p.NodePool)
	}
	if _, err := admin.EnsurePrerequisites(ctx, "default", nodePools); err != nil {
		t.Fatal(err)
	}
	children := map[string]string{}
	for _, p := range fleet.Pools {
		job, err := nomad.RenderPoolJob(p, nomad.RenderOptions{Command: "/bin/sh", Args: []string{"-c", "exit 0"},
			Resources: map[string]nomad.Resources{p.Tier: {CPU: 50, MemoryMB: 32}}, KillTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := admin.RegisterPool(ctx, job); err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		child, err := admin.DispatchRunner(ctx, p, nomad.Runner{Name: "r-" + p.Name, GitHubJobID: 1, Attempt: 1, JITConfig: "jit"})
		if err != nil {
			t.Fatalf("dispatch %s: %v", p.Name, err)
		}
		children[p.Name] = child
	}

	poll(t, "the quick runner to run on the donor", func() bool {
		as, _, err := ag.Client.Jobs().Allocations(children["quick"], false, nil)
		if err == nil && len(as) == 1 && as[0].ClientStatus == api.AllocClientStatusFailed {
			a, _, _ := ag.Client.Allocations().Info(as[0].ID, nil)
			t.Fatalf("quick runner failed: %+v", a.TaskStates)
		}
		return err == nil && len(as) == 1 && as[0].NodeID == ag.NodeID && as[0].ClientStatus == api.AllocClientStatusComplete
	})
	for _, name := range []string{"refleak", "strict"} {
		var why string
		poll(t, name+" blocked", func() bool { why, _ = admin.BlockedReason(ctx, children[name]); return why != "" })
		if as, _, _ := ag.Client.Jobs().Allocations(children[name], false, nil); len(as) != 0 {
			t.Errorf("%s placed %d allocations on a host it may not use", name, len(as))
		}
		t.Logf("%s: %s", name, why)
	}

	for _, tt := range []struct {
		pool      string
		placeable bool
		why       string
	}{
		{"quick", true, ""},
		{"refleak", false, "${meta.buildfleet_tiers} set_contains refleak"},
		{"strict", false, "${meta.buildfleet_isolation} set_contains_any container,vm not met (\"user\")"},
	} {
		hs, err := admin.PoolHosts(ctx, *fleet.Pool(tt.pool))
		if err != nil {
			t.Fatal(err)
		}
		if len(hs) != 1 || hs[0].Name != "donor-1" || hs[0].Placeable != tt.placeable || !strings.Contains(hs[0].Why, tt.why) ||
			hs[0].Isolation != "user" || hs[0].NodePool != fleet.Pool(tt.pool).NodePool {
			t.Errorf("%s: hosts %+v; want donor-1 placeable=%v (%s)", tt.pool, hs, tt.placeable, tt.why)
		}
	}

	// docs/donors.md: the nomad CLI on the host, with the variables the
	// rendered config names, reaches the agent's HTTPS API.
	bin := testenv.NomadBinary(t)
	self := func(env ...string) (string, error) {
		cmd := exec.Command(bin, "node", "status", "-self")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, want := range []string{"NOMAD_ADDR=https://127.0.0.1:4646", "NOMAD_CACERT=", "NOMAD_CLIENT_CERT=", "NOMAD_CLIENT_KEY=", "NOMAD_TLS_SERVER_NAME=client.<region>.nomad"} {
		if !strings.Contains(string(hcl), want) {
			t.Errorf("donor config does not name %s", want)
		}
	}
	if out, err := self("NOMAD_ADDR="+ag.Addr, "NOMAD_CACERT=", "NOMAD_CLIENT_CERT=", "NOMAD_CLIENT_KEY="); err == nil {
		t.Errorf("node status -self without TLS variables worked:\n%s", out)
	}
	out, err := self("NOMAD_ADDR="+ag.Addr, "NOMAD_CACERT="+ca.CertFile, "NOMAD_CLIENT_CERT="+ag.CLI.CertFile,
		"NOMAD_CLIENT_KEY="+ag.CLI.KeyFile, "NOMAD_TLS_SERVER_NAME=client.global.nomad")
	if err != nil || !strings.Contains(out, "donor-1") || !strings.Contains(out, "ready") {
		t.Errorf("node status -self with the documented variables: %v\n%s", err, out)
	}
}
