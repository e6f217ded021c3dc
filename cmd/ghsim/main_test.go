package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
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
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:18787", "--repo", "python/cpython",
			"--token", "tok=bot", "--collaborator", "alice=triage", "--fault", "latency:latency=1ms"}, &out, io.Discard)
	}()
	var body string
	for i := 0; i < 100; i++ {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:18787/repos/python/cpython/collaborators/alice/permission", nil)
		req.Header.Set("Authorization", "token tok")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(body, `"role_name":"triage"`) {
		t.Errorf("permission: %s", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}
