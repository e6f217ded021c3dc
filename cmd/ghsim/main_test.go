package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestRunnerNeedsConfig(t *testing.T) {
	if err := run(context.Background(), []string{"runner"}, io.Discard, io.Discard); err == nil {
		t.Error("runner without a JIT config succeeded")
	}
	if err := run(context.Background(), []string{"runner", "--jitconfig-file", "/nonexistent"}, io.Discard, io.Discard); err == nil {
		t.Error("runner with a missing config file succeeded")
	}
}

func TestServeSetsUpRepo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A free port: the server says where it listens on its first line.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--repo", "python/cpython",
			"--token", "tok=bot", "--collaborator", "alice=triage", "--fault", "latency:latency=1ms"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the serving line: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "ghsim serving at ")
	if !ok {
		t.Fatalf("first line %q does not say where ghsim serves", line)
	}
	req, _ := http.NewRequest("GET", url+"/repos/python/cpython/collaborators/alice/permission", nil)
	req.Header.Set("Authorization", "token tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if body := string(b); !strings.Contains(body, `"role_name":"triage"`) {
		t.Errorf("permission: %s", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}
