package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var built struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// buildBinary builds the buildfleet binary once per test process.
func buildBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "buildfleet-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "buildfleet")
		built.out, built.err = exec.Command("go", "build", "-o", built.path, ".").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return built.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.path != "" {
		os.RemoveAll(filepath.Dir(built.path))
	}
	os.Exit(code)
}

// TestServeStopsCleanlyOnSIGTERM builds the binary, serves with a config
// from flags and environment, checks /healthz and /metrics, and sends
// SIGTERM: the process must exit 0 and say it stopped.
func TestServeStopsCleanlyOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	bin := buildBinary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(`
repositories:
  - name: python/cpython
pools:
  - {name: q, platform: linux-x86_64, tier: quick, labels: [self-hosted, quick], stable: true}
  - {name: r, platform: linux-x86_64, tier: refleak, labels: [self-hosted, refleak], stable: true}
`), 0o600)
	cmd := exec.Command(bin, "serve", "--config", cfg, "--listen", addr, "--log-format", "json",
		"--github-api-url", "http://127.0.0.1:1/", "--nomad-address", "http://127.0.0.1:1")
	cmd.Env = append(os.Environ(),
		"BUILDFLEET_GITHUB_TOKEN=ghp_never_printed",
		"BUILDFLEET_GITHUB_WEBHOOK_SECRET=hook_never_printed",
		"BUILDFLEET_STORE_PATH="+filepath.Join(dir, "bf.db"))
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
		}
		logs <- b.String()
	}()

	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("serve did not answer /healthz: %v\n%s", err, <-logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "buildfleet_build_info") {
		t.Errorf("/metrics lacks buildfleet_build_info")
	}

	cmd.Process.Signal(syscall.SIGTERM)
	// Read the log to its end before Wait, which closes the pipe.
	var out string
	select {
	case out = <-logs:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatal("serve did not stop within 15s of SIGTERM")
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve exited with %v after SIGTERM, want 0", err)
	}
	if !strings.Contains(out, `"msg":"buildfleet manager stopped"`) {
		t.Errorf("no JSON stop log line:\n%s", out)
	}
	if strings.Contains(out, "never_printed") {
		t.Errorf("a secret reached the logs:\n%s", out)
	}
}
