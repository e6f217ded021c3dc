package status_test

import (
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/status"
)

type fixedRelease status.RunnerRelease

func (r fixedRelease) RunnerRelease() status.RunnerRelease { return status.RunnerRelease(r) }

// TestRunnerReleaseLine: the front page says which runner release the
// fleet downloads against GitHub's latest and warns when a frozen fleet
// falls behind; each pool says which runner its hosts run.
func TestRunnerReleaseLine(t *testing.T) {
	f := newFixture(t, nil)
	cfg := f.cfg
	cfg.ActRunner = config.ActRunner{URL: "https://runners.example/", Checksums: "SHA256SUMS"}
	cfg.Pools = append(cfg.Pools, config.Pool{Name: "freebsd-quick", Platform: "freebsd-x86_64", Tier: "quick",
		Labels: []string{"freebsd"}, Runner: config.RunnerActRunner, MaxRunners: 1})
	warning := "runner 2.330.0 (frozen) lags GitHub's 2.331.0 by 20 days; GitHub refuses runners 30 days behind (10 days left)"
	h := status.New(status.Options{Store: f.st, Config: cfg, Logger: slog.New(slog.DiscardHandler),
		Now:    func() time.Time { return t0 },
		Runner: fixedRelease{Mode: "frozen", InUse: "2.330.0", Latest: "2.331.0", Behind: 20 * 24 * time.Hour, Warning: warning}})
	srv := httptest.NewServer(h)
	defer srv.Close()
	f.srv = srv

	code, _, body := f.get(t, "/")
	if code != 200 {
		t.Fatalf("front page: %d", code)
	}
	for _, want := range []string{`id="runner-release" class="warning"`, "2.330.0 (frozen)", "GitHub's latest is 2.331.0", "10 days left",
		"actions runner 2.330.0", "github-act-runner"} {
		if !strings.Contains(body, want) {
			t.Errorf("front page lacks %q", want)
		}
	}
	_, _, body = f.get(t, "/api/v1/pools")
	var pools struct {
		Pools []struct {
			Name   string `json:"name"`
			Runner string `json:"runner"`
		} `json:"pools"`
	}
	if err := json.Unmarshal([]byte(body), &pools); err != nil {
		t.Fatalf("pools JSON: %v\n%s", err, body)
	}
	got := map[string]string{}
	for _, p := range pools.Pools {
		got[p.Name] = p.Runner
	}
	if got["ubuntu-quick"] != "actions runner 2.330.0" || got["freebsd-quick"] != "github-act-runner" {
		t.Errorf("pools' runners = %v", got)
	}
}
