package donor

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/internal/testenv"
)

// TestNomadValidatesRendering runs `nomad config validate` on renderings for
// every OS. The data_dir of a Windows rendering is not absolute on this
// Linux machine, so a second file (merged over the first, as the agent does)
// points data_dir at a temporary folder; everything else is as rendered.
func TestNomadValidatesRendering(t *testing.T) {
	nomad := testenv.NomadBinary(t)
	dir := t.TempDir()
	override := filepath.Join(dir, "override.hcl")
	if err := os.WriteFile(override, []byte(fmt.Sprintf("data_dir = %q\n", filepath.Join(dir, "data"))), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*Options)
	}{
		{"linux raw_exec", nil},
		{"linux docker", func(o *Options) { o.Driver, o.Name, o.Datacenter = "docker", "box-1", "ams1" }},
		{"windows", func(o *Options) { o.Platform = "windows-x86_64" }},
		{"macos", func(o *Options) { o.Platform = "macos-arm64" }},
		{"freebsd hostile owner", func(o *Options) { o.Platform, o.Owner = "freebsd-x86_64", hostile[1]+hostile[2] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base()
			if tt.edit != nil {
				tt.edit(&o)
			}
			b, err := Render(o)
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".hcl")
			if err := os.WriteFile(f, b, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(nomad, "config", "validate", f, override).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Configuration is valid") {
				t.Fatalf("nomad config validate: %v\n%s\n--- config:\n%s", err, out, b)
			}
		})
	}
	// The check is real: a broken file fails.
	bad := filepath.Join(dir, "bad.hcl")
	if err := os.WriteFile(bad, []byte("client {\n  enabled = true\n  bogus = 1\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(nomad, "config", "validate", bad, override).CombinedOutput(); err == nil {
		t.Fatalf("a config with an unknown key validated:\n%s", out)
	}
}

// TestNomadAgentReadsValues starts a dev agent on a rendering whose owner
// tries every injection in hostile, and reads the node back: the meta
// values, pool and name must be exactly what was given. The tls block is
// cut (the test has no certificates); ports and data_dir are overridden.
func TestNomadAgentReadsValues(t *testing.T) {
	nomad := testenv.NomadBinary(t)
	o := base()
	o.Owner = strings.Join(hostile, " | ")
	o.Name = "donor-test"
	b, err := Render(o)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	i := strings.Index(cfg, "\ntls {")
	if i < 0 {
		t.Fatal("no tls block")
	}
	cfg = cfg[:i+1]

	dir, err := os.MkdirTemp("", "buildfleet-donor-")
	if err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 3)
	override := fmt.Sprintf("data_dir = %q\nbind_addr = \"127.0.0.1\"\nports {\n  http = %d\n  rpc = %d\n  serf = %d\n}\nclient {\n  alloc_dir = %q\n}\n",
		filepath.Join(dir, "data"), ports[0], ports[1], ports[2], filepath.Join(dir, "alloc"))
	for name, content := range map[string]string{"client.hcl": cfg, "override.hcl": override} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var logs strings.Builder
	cmd := exec.Command(nomad, "agent", "-dev", "-config", filepath.Join(dir, "client.hcl"), "-config", filepath.Join(dir, "override.hcl"))
	cmd.Env = agentEnv()
	cmd.Stdout, cmd.Stderr = &syncWriter{b: &logs}, &syncWriter{b: &logs}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})

	addr := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var node struct {
		Name, NodePool, Status string
		Meta                   map[string]string
	}
	for {
		var stubs []struct{ ID, Status string }
		if getJSON(ctx, addr+"/v1/nodes", &stubs) == nil && len(stubs) == 1 && stubs[0].Status == "ready" {
			if err := getJSON(ctx, addr+"/v1/node/"+stubs[0].ID, &node); err != nil {
				t.Fatal(err)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("node not ready: %v\n%s", ctx.Err(), logs.String())
		case <-done:
			t.Fatalf("agent exited:\n%s", logs.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	want := map[string]string{
		"buildfleet_owner":     o.Owner,
		"buildfleet_contact":   o.Contact,
		"buildfleet_tiers":     "quick,refleak",
		"buildfleet_platform":  "linux-x86_64",
		"buildfleet_isolation": "user",
	}
	// Invalid UTF-8 is written as U+FFFD.
	want["buildfleet_owner"] = strings.ToValidUTF8(o.Owner, "\uFFFD\uFFFD")
	for k, v := range want {
		if node.Meta[k] != v {
			t.Errorf("meta %s = %q, want %q", k, node.Meta[k], v)
		}
	}
	for k := range node.Meta {
		if strings.HasPrefix(k, "buildfleet_") && want[k] == "" {
			t.Errorf("unexpected meta %s = %q", k, node.Meta[k])
		}
	}
	if node.NodePool != "buildfleet-linux-x86_64" || node.Name != "donor-test" {
		t.Errorf("node pool %q, name %q", node.NodePool, node.Name)
	}
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// agentEnv drops what would disturb the agent: AWS_CA_BUNDLE (the cloud
// fingerprinters are denied, but an agent started without this file's
// denylist would abort on it) and NOMAD_* settings of the caller.
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

// syncWriter serialises the agent's stdout and stderr into one builder.
type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
