package nomadtest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/buildfleet/buildfleet/internal/testenv"
)

// Cluster is a Nomad server agent (not -dev) with mutual TLS on HTTP and
// RPC, and client agents that join it as separate hosts would: each in a
// network namespace of its own when the test runs as root and `ip netns`
// works here, else each on its own loopback ports. Clients are configured
// by the caller (from `buildfleet donor config`); the cluster adds only
// what differs between hosts on one machine (data dir, certificate files,
// ports without namespaces).
type Cluster struct {
	// CA issued every certificate; CLI is a certificate for API clients
	// (the manager, `buildfleet nomad apply`, the test).
	CA  *CA
	CLI Pair
	// Server is the server agent; Server.Addr is its HTTPS address.
	Server *Agent
	// RPC is the server's RPC address, what donors put in --servers.
	RPC string
	// HostIP is the address of this (the test's) host that clients reach:
	// a service the runners call (ghsim) must listen there.
	HostIP string
	// Netns says whether clients run in network namespaces of their own.
	Netns bool
	// NoNetnsReason says why they do not.
	NoNetnsReason string

	bin   string
	dir   string
	hosts []*host
	next  int
}

// host is one client's place: a network namespace and its addresses.
type host struct {
	ns, vethHost string
	hostIP, ip   string
}

// ClusterOptions shape a cluster.
type ClusterOptions struct {
	// Clients is how many client agents the test will start (the network
	// namespaces are made up front).
	Clients int
	// Loopback keeps the clients in the test's network namespace, on ports
	// of their own, even where namespaces would work.
	Loopback bool
}

// StartCluster starts the server and prepares the clients' hosts; all is
// removed when the test ends.
func StartCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	c := &Cluster{bin: testenv.NomadBinary(t), HostIP: "127.0.0.1"}
	dir, err := os.MkdirTemp("", "buildfleet-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	if o.Loopback {
		c.NoNetnsReason = "asked for loopback clients"
	} else {
		c.setupHosts(t, o.Clients)
	}

	var ips []net.IP
	for _, h := range c.hosts {
		ips = append(ips, net.ParseIP(h.hostIP), net.ParseIP(h.ip))
	}
	c.CA = NewCA(t)
	srv := c.CA.Issue(t, "server.global.nomad", []string{"localhost"}, append([]net.IP{net.IPv4(127, 0, 0, 1)}, ips...))
	c.CLI = c.CA.CLI(t, "")
	ports, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	bind := "127.0.0.1"
	if c.Netns {
		bind = "0.0.0.0"
	}
	sdir := filepath.Join(dir, "server")
	hcl := fmt.Sprintf(`name = "server"
data_dir = %q
bind_addr = %q
advertise {
  http = %q
  rpc  = %q
  serf = %q
}
ports {
  http = %d
  rpc  = %d
  serf = %d
}
log_level = "INFO"
disable_update_check = true
server {
  enabled          = true
  bootstrap_expect = 1
}
tls {
  http = true
  rpc  = true
  ca_file   = %q
  cert_file = %q
  key_file  = %q
  verify_server_hostname = true
  verify_https_client    = true
}
`, filepath.Join(sdir, "data"), bind, c.HostIP, c.HostIP, c.HostIP, ports[0], ports[1], ports[2],
		c.CA.CertFile, srv.CertFile, srv.KeyFile)
	c.RPC = net.JoinHostPort(c.HostIP, fmt.Sprint(ports[1]))
	a, err := c.launch(t, "server", sdir, nil, hcl, "https://"+net.JoinHostPort(c.HostIP, fmt.Sprint(ports[0])))
	if err != nil {
		t.Fatal(err)
	}
	c.Server = a
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.waitLeader(ctx); err != nil {
		t.Fatalf("nomad server: %v\n%s", err, a.LogTail(40))
	}
	return c
}

// setupHosts makes one network namespace per client, joined to this host
// by a veth pair on a /30 of its own; any failure falls back to loopback.
func (c *Cluster) setupHosts(t testing.TB, n int) {
	t.Helper()
	if os.Getuid() != 0 {
		c.NoNetnsReason = "not root: clients share the test's network namespace, on ports of their own"
		return
	}
	if _, err := exec.LookPath("ip"); err != nil {
		c.NoNetnsReason = "no ip command (iproute2): clients share the test's network namespace"
		return
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		c.NoNetnsReason = "no nsenter (util-linux): clients share the test's network namespace"
		return
	}
	// A random /24 of 10.200-10.249, one /30 per host, so that concurrent
	// test processes do not collide.
	for attempt := 0; attempt < 5; attempt++ {
		b2, b3 := 200+rand.IntN(50), rand.IntN(256)
		tag := fmt.Sprintf("%x%02x", b2-200, b3)
		var hosts []*host
		ok := true
		for i := 0; i < n; i++ {
			h := &host{
				ns:       fmt.Sprintf("bf-%s-%d", tag, i),
				vethHost: fmt.Sprintf("bf%s%dh", tag, i),
				hostIP:   fmt.Sprintf("10.%d.%d.%d", b2, b3, 4*i+1),
				ip:       fmt.Sprintf("10.%d.%d.%d", b2, b3, 4*i+2),
			}
			if err := h.create(); err != nil {
				h.destroy()
				c.NoNetnsReason = fmt.Sprintf("ip netns failed (%v): clients share the test's network namespace", err)
				ok = false
				break
			}
			hosts = append(hosts, h)
		}
		if !ok {
			for _, h := range hosts {
				h.destroy()
			}
			continue
		}
		c.hosts, c.Netns, c.NoNetnsReason = hosts, true, ""
		c.HostIP = hosts[0].hostIP
		t.Cleanup(func() {
			for _, h := range hosts {
				h.destroy()
			}
		})
		return
	}
}

func (h *host) create() error {
	vethNS := h.vethHost[:len(h.vethHost)-1] + "n"
	steps := [][]string{
		{"netns", "add", h.ns},
		{"link", "add", h.vethHost, "type", "veth", "peer", "name", vethNS},
		{"link", "set", vethNS, "netns", h.ns},
		{"addr", "add", h.hostIP + "/30", "dev", h.vethHost},
		{"link", "set", h.vethHost, "up"},
		{"-n", h.ns, "addr", "add", h.ip + "/30", "dev", vethNS},
		{"-n", h.ns, "link", "set", vethNS, "up"},
		{"-n", h.ns, "link", "set", "lo", "up"},
		{"-n", h.ns, "route", "add", "default", "via", h.hostIP},
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(s, " "), err, bytes.TrimSpace(out))
		}
	}
	return nil
}

func (h *host) destroy() {
	_ = exec.Command("ip", "link", "del", h.vethHost).Run()
	_ = exec.Command("ip", "netns", "del", h.ns).Run()
}

// APIConfig is an api client configuration for addr (https) with the
// cluster's CA and the CLI certificate.
func (c *Cluster) APIConfig(addr string) *api.Config {
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cfg.TLSConfig = &api.TLSConfig{CACert: c.CA.CertFile, ClientCert: c.CLI.CertFile, ClientKey: c.CLI.KeyFile}
	return cfg
}

// ClientEnv is what a Nomad CLI or api.DefaultConfig needs to talk to the
// server: NOMAD_ADDR and the TLS files.
func (c *Cluster) ClientEnv() []string {
	return []string{"NOMAD_ADDR=" + c.Server.Addr, "NOMAD_CACERT=" + c.CA.CertFile,
		"NOMAD_CLIENT_CERT=" + c.CLI.CertFile, "NOMAD_CLIENT_KEY=" + c.CLI.KeyFile}
}

// StartClient starts a client agent named name (the node name the donor
// config sets) from the donor's configuration, on the next host. It
// overrides only the data dir, the TLS files (the test's CA and a client
// certificate) and, without namespaces, the ports; it waits until the
// server lists the node ready with raw_exec healthy.
func (c *Cluster) StartClient(t testing.TB, name string, donorHCL []byte) *Agent {
	t.Helper()
	dir := filepath.Join(c.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var h *host
	ip := "127.0.0.1"
	if c.Netns {
		if c.next >= len(c.hosts) {
			t.Fatalf("StartClient: only %d hosts prepared", len(c.hosts))
		}
		h = c.hosts[c.next]
		ip = h.ip
	}
	c.next++
	cert := c.CA.Issue(t, "client.global.nomad", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.ParseIP(ip)})
	donorFile := filepath.Join(dir, "donor.hcl")
	if err := os.WriteFile(donorFile, donorHCL, 0o600); err != nil {
		t.Fatal(err)
	}
	override := fmt.Sprintf("data_dir = %q\ntls {\n  ca_file = %q\n  cert_file = %q\n  key_file = %q\n}\n",
		filepath.Join(dir, "data"), c.CA.CertFile, cert.CertFile, cert.KeyFile)
	httpPort := 4646
	if !c.Netns {
		ports, err := freePorts(3)
		if err != nil {
			t.Fatal(err)
		}
		httpPort = ports[0]
		override += fmt.Sprintf("bind_addr = \"127.0.0.1\"\nadvertise {\n  http = \"127.0.0.1\"\n  rpc = \"127.0.0.1\"\n  serf = \"127.0.0.1\"\n}\n"+
			"ports {\n  http = %d\n  rpc = %d\n  serf = %d\n}\n", ports[0], ports[1], ports[2])
	}
	a, err := c.launch(t, name, dir, h, override, "https://"+net.JoinHostPort(ip, fmt.Sprint(httpPort)), donorFile)
	if err != nil {
		t.Fatal(err)
	}
	a.Name = name
	t.Cleanup(func() {
		if err := a.Stop(); err != nil {
			t.Errorf("stopping nomad client %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("nomad client %s log (last 40 lines):\n%s", name, a.LogTail(40))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.waitNode(ctx, a); err != nil {
		t.Fatalf("nomad client %s: %v\n%s", name, err, a.LogTail(40))
	}
	return a
}

// launch starts `nomad agent` with the given config files (configs first,
// then the override, which wins), inside h's network namespace if any.
func (c *Cluster) launch(t testing.TB, name, dir string, h *host, override, addr string, configs ...string) (*Agent, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ovFile := filepath.Join(dir, "override.hcl")
	if err := os.WriteFile(ovFile, []byte(override), 0o600); err != nil {
		return nil, err
	}
	args := []string{"agent"}
	for _, f := range append(configs, ovFile) {
		args = append(args, "-config", f)
	}
	cmd := exec.Command(c.bin, args...)
	if h != nil {
		cmd = exec.Command("nsenter", append([]string{"--net=/run/netns/" + h.ns, "--", c.bin}, args...)...)
	}
	a := &Agent{Addr: addr, DataDir: dir, logs: &bytes.Buffer{}, done: make(chan struct{}), Name: name}
	cmd.Env = agentEnv()
	cmd.Stdout = &lockedWriter{buf: a.logs}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	a.cmd = cmd
	go func() { _ = cmd.Wait(); close(a.done) }()
	cl, err := api.NewClient(c.APIConfig(addr))
	if err != nil {
		_ = a.Stop()
		return nil, err
	}
	a.Client = cl
	if name == "server" {
		t.Cleanup(func() {
			if err := a.Stop(); err != nil {
				t.Errorf("stopping nomad server: %v", err)
			}
		})
	}
	return a, nil
}

func (c *Cluster) waitLeader(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("no leader: %w", ctx.Err())
		case <-c.Server.done:
			return fmt.Errorf("server exited")
		case <-time.After(100 * time.Millisecond):
		}
		if l, err := c.Server.Client.Status().Leader(); err == nil && l != "" && keyringReady(c.Server.Client) {
			return nil
		}
	}
}

func (c *Cluster) waitNode(ctx context.Context, a *Agent) error {
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("node not ready: %w", ctx.Err())
		case <-a.done:
			return fmt.Errorf("agent exited")
		case <-time.After(100 * time.Millisecond):
		}
		nodes, _, err := c.Server.Client.Nodes().List(nil)
		if err != nil {
			continue
		}
		for _, n := range nodes {
			if n.Name != a.Name || n.Status != "ready" {
				continue
			}
			if d, ok := n.Drivers["raw_exec"]; ok && d.Healthy {
				a.NodeID = n.ID
				return nil
			}
		}
	}
}

// Exited is closed when the agent's process has exited.
func (a *Agent) Exited() <-chan struct{} { return a.done }

// Interrupt sends the agent SIGINT, as a service manager stopping it does.
func (a *Agent) Interrupt() error { return a.cmd.Process.Signal(os.Interrupt) }

func newAPIClient(cfg *api.Config) (*api.Client, error) { return api.NewClient(cfg) }
