// Package nomadtest starts a real Nomad dev agent for tests: free ports, a
// temporary data dir, raw_exec enabled, cloud fingerprinters off. It waits
// until the node is ready and raw_exec healthy, and removes everything when
// the test ends (no NomadClient* folders or tmpfs mounts left behind).
package nomadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/testenv"
)

// Options shape the agent's client node.
type Options struct {
	// NodePool puts the client in a node pool (created on registration).
	// Empty means HostNodePool(): the node pool that pools of this host's
	// platform place their runners in by default (config.PlacementOf), so
	// jobs rendered from a pool config place on the agent.
	NodePool string
	// Meta is the client's node meta, e.g. buildfleet_tiers=quick,refleak.
	Meta map[string]string
	// NodeMaxAllocs limits concurrent allocations on the node (0: no limit).
	NodeMaxAllocs int
	// ACL enables ACLs; the agent is bootstrapped and Agent.Token is the
	// management token.
	ACL bool
	// ExtraHCL is appended to the agent's configuration.
	ExtraHCL string
	// TLS, when set, serves HTTP and RPC over mutual TLS with a server
	// certificate of this CA; Addr is then https:// and Client presents
	// the CA's CLI certificate.
	TLS *CA
	// ConfigHCL, when set, is the agent's configuration instead of the one
	// the fields above make (e.g. the output of `buildfleet donor config`);
	// the test only overrides what must differ on a test machine: ports,
	// bind address, data and alloc dirs, and with TLS the certificate
	// files (the tls block's settings stay ConfigHCL's).
	ConfigHCL string

	tlsServer, tlsCLI Pair
}

// HostNodePool is the default node pool of pools of this host's platform
// (linux-x86_64 or linux-aarch64).
func HostNodePool() string {
	name := "linux-x86_64"
	if runtime.GOARCH == "arm64" {
		name = "linux-aarch64"
	}
	p, err := config.ParsePlatform(name)
	if err != nil {
		panic(err)
	}
	return config.DefaultNodePool(p)
}

// Agent is a running dev agent.
type Agent struct {
	// Addr is the HTTP API address, e.g. http://127.0.0.1:41234.
	Addr string
	// Token is the management token when ACLs are on.
	Token string
	// Client is an api client for Addr (with Token).
	Client *api.Client
	// DataDir is the agent's data dir.
	DataDir string
	// NodeID is the ID of the agent's client node.
	NodeID string
	// CLI is the API certificate Client uses when Options.TLS is set.
	CLI Pair
	// Name is the node name of a cluster's agent.
	Name string

	cmd  *exec.Cmd
	logs *bytes.Buffer
	done chan struct{}

	// What Restart needs to start the same agent again.
	bin   string
	opts  Options
	ports []int
}

// Start starts a dev agent and registers its cleanup with t.
func Start(t testing.TB, o Options) *Agent {
	t.Helper()
	bin := testenv.NomadBinary(t)
	if o.TLS != nil {
		o.tlsServer, o.tlsCLI = o.TLS.Combined(t, ""), o.TLS.CLI(t, "")
	}
	a, err := start(bin, o)
	if err != nil {
		t.Fatalf("starting nomad dev agent: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Stop(); err != nil {
			t.Errorf("stopping nomad dev agent: %v", err)
		}
		if t.Failed() {
			t.Logf("nomad agent log (last 60 lines):\n%s", a.LogTail(60))
		}
	})
	return a
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func start(bin string, o Options) (*Agent, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	return startOn(bin, o, ports)
}

// startOn starts an agent on the given HTTP, RPC and Serf ports with a
// new data dir.
func startOn(bin string, o Options, ports []int) (*Agent, error) {
	dir, err := os.MkdirTemp("", "buildfleet-nomad-")
	if err != nil {
		return nil, err
	}
	if o.NodePool == "" {
		o.NodePool = HostNodePool()
	}
	cfg := renderHCL(o, ports, dir)
	var args []string
	if o.ConfigHCL != "" {
		base := filepath.Join(dir, "base.hcl")
		if err := os.WriteFile(base, []byte(o.ConfigHCL), 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		args = append(args, "-config", base)
		cfg = overrideHCL(o, ports, dir)
	}
	cfgPath := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	a := &Agent{
		Addr:    fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		DataDir: dir,
		CLI:     o.tlsCLI,
		logs:    &bytes.Buffer{},
		done:    make(chan struct{}),
		bin:     bin,
		opts:    o,
		ports:   ports,
	}
	if o.TLS != nil {
		a.Addr = fmt.Sprintf("https://127.0.0.1:%d", ports[0])
	}
	args = append(args, "-config", cfgPath, "-data-dir", filepath.Join(dir, "data"))
	cmd := exec.Command(bin, append([]string{"agent", "-dev"}, args...)...)
	cmd.Env = agentEnv()
	cmd.Stdout = &lockedWriter{buf: a.logs}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	a.cmd = cmd
	go func() { _ = cmd.Wait(); close(a.done) }()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.waitReady(ctx, o); err != nil {
		tail := a.LogTail(40)
		_ = a.Stop()
		return nil, fmt.Errorf("%w\nagent log:\n%s", err, tail)
	}
	return a, nil
}

// agentEnv is the test's environment without what breaks a dev agent: an
// inherited AWS_CA_BUNDLE makes the AWS fingerprinter abort the agent, and
// NOMAD_* would point the agent's own CLI parts elsewhere.
func agentEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "AWS_CA_BUNDLE" || strings.HasPrefix(k, "NOMAD_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func renderHCL(o Options, ports []int, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "bind_addr = \"127.0.0.1\"\nlog_level = \"INFO\"\n")
	fmt.Fprintf(&b, "ports {\n  http = %d\n  rpc = %d\n  serf = %d\n}\n", ports[0], ports[1], ports[2])
	b.WriteString("client {\n  enabled = true\n")
	fmt.Fprintf(&b, "  alloc_dir = %q\n", filepath.Join(dir, "alloc"))
	if o.NodePool != "" {
		fmt.Fprintf(&b, "  node_pool = %q\n", o.NodePool)
	}
	if o.NodeMaxAllocs > 0 {
		fmt.Fprintf(&b, "  node_max_allocs = %d\n", o.NodeMaxAllocs)
	}
	b.WriteString("  options {\n    \"fingerprint.denylist\" = \"env_aws,env_gce,env_azure,env_digitalocean\"\n  }\n")
	if len(o.Meta) > 0 {
		b.WriteString("  meta {\n")
		keys := make([]string, 0, len(o.Meta))
		for k := range o.Meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "    %q = %q\n", k, o.Meta[k])
		}
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
	b.WriteString("plugin \"raw_exec\" {\n  config {\n    enabled = true\n  }\n}\n")
	if o.ACL {
		b.WriteString("acl {\n  enabled = true\n}\n")
	}
	if o.TLS != nil {
		b.WriteString(o.TLS.TLSHCL(o.tlsServer))
	}
	b.WriteString(o.ExtraHCL)
	return b.String()
}

// overrideHCL is what a test changes in a given configuration.
func overrideHCL(o Options, ports []int, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "bind_addr = \"127.0.0.1\"\ndata_dir = %q\n", filepath.Join(dir, "data"))
	fmt.Fprintf(&b, "ports {\n  http = %d\n  rpc = %d\n  serf = %d\n}\n", ports[0], ports[1], ports[2])
	fmt.Fprintf(&b, "client {\n  alloc_dir = %q\n}\n", filepath.Join(dir, "alloc"))
	if o.TLS != nil {
		fmt.Fprintf(&b, "tls {\n  ca_file = %q\n  cert_file = %q\n  key_file = %q\n}\n", o.TLS.CertFile, o.tlsServer.CertFile, o.tlsServer.KeyFile)
	}
	return b.String()
}

func (a *Agent) waitReady(ctx context.Context, o Options) error {
	cfg := api.DefaultConfig()
	cfg.Address = a.Addr
	cfg.TLSConfig = &api.TLSConfig{}
	if o.TLS != nil {
		cfg.TLSConfig = &api.TLSConfig{CACert: o.TLS.CertFile, ClientCert: a.CLI.CertFile, ClientKey: a.CLI.KeyFile}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent not ready: %w", ctx.Err())
		case <-a.done:
			return fmt.Errorf("agent exited early")
		case <-tick.C:
		}
		if o.ACL && a.Token == "" {
			c, err := api.NewClient(cfg)
			if err != nil {
				return err
			}
			tok, _, err := c.ACLTokens().Bootstrap(nil)
			if err != nil {
				continue // leader not elected yet
			}
			a.Token = tok.SecretID
			cfg.SecretID = tok.SecretID
		}
		c, err := api.NewClient(cfg)
		if err != nil {
			return err
		}
		nodes, _, err := c.Nodes().List(nil)
		if err != nil || len(nodes) == 0 {
			continue
		}
		n := nodes[0]
		if n.Status != "ready" {
			continue
		}
		if d, ok := n.Drivers["raw_exec"]; !ok || !d.Healthy {
			continue
		}
		// Variables need the keyring, which a fresh leader initialises a
		// little after the node is ready: its public keys show it.
		if !keyringReady(c) {
			continue
		}
		a.Client = c
		a.NodeID = n.ID
		return nil
	}
}

// keyringReady tells whether the cluster's keyring has a key, as the api
// package's own test harness checks it: /.well-known/jwks.json lists keys.
func keyringReady(c *api.Client) bool {
	var v struct{ Keys []json.RawMessage }
	_, err := c.Raw().Query("/.well-known/jwks.json", &v, nil)
	return err == nil && len(v.Keys) > 0
}

// Stop interrupts the agent (so it stops its tasks and unmounts their
// secrets dirs), waits for it, unmounts anything left and removes the data
// dir. It is safe to call twice.
func (a *Agent) Stop() error {
	if a.cmd != nil && a.cmd.Process != nil {
		select {
		case <-a.done:
		default:
			_ = a.cmd.Process.Signal(os.Interrupt)
			select {
			case <-a.done:
			case <-time.After(20 * time.Second):
				_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
				<-a.done
			}
		}
	}
	if a.DataDir == "" {
		return nil
	}
	unmountUnder(a.DataDir)
	err := os.RemoveAll(a.DataDir)
	if err == nil {
		a.DataDir = ""
	}
	return err
}

// unmountUnder lazily unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, fields[4])
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
	}
}

// LogTail returns the last n lines of the agent's output.
func (a *Agent) LogTail(n int) string {
	lw := a.cmd.Stdout.(*lockedWriter)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lines := strings.Split(strings.TrimRight(a.logs.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
