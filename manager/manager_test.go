package manager

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/nomadtest"
)

// fakeGitHub answers GET /rate_limit like GitHub, counting calls.
func fakeGitHub(t *testing.T, calls *atomic.Int64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The hourly look at GitHub's runner release is not readiness
		// polling. It answers 503: any other answer would count as GitHub
		// reached, and whether it or the probe came first would decide
		// the calls counted below.
		if strings.HasSuffix(r.URL.Path, "/actions/runners/downloads") {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer ghp_test" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"message":"Bad credentials"}`)
			return
		}
		if r.URL.Path != "/rate_limit" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"resources":{"core":{"limit":5000,"remaining":4999,"reset":1700000000,"used":1}},"rate":{"limit":5000,"remaining":4999,"reset":1700000000,"used":1}}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func testConfig(t *testing.T, githubURL, nomadAddr string) config.Config {
	c := config.Default()
	c.Listen = "127.0.0.1:0"
	c.Store.Path = filepath.Join(t.TempDir(), "buildfleet.db")
	c.GitHub.APIURL = githubURL + "/"
	c.GitHub.Token = "ghp_test"
	c.GitHub.WebhookSecret = "hook"
	c.Nomad.Address = nomadAddr
	c.Repositories = []config.Repository{{Name: "python/cpython"}}
	c.Pools = []config.Pool{
		{Name: "q", Platform: "linux-x86_64", Tier: "quick", Labels: []string{"self-hosted", "quick"}, Stable: true},
		{Name: "r", Platform: "linux-x86_64", Tier: "refleak", Labels: []string{"self-hosted", "refleak"}, Stable: true},
	}
	c.ApplyDefaults()
	return c
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRunServesHealthReadinessMetrics(t *testing.T) {
	agent := nomadtest.Start(t, nomadtest.Options{})
	var ghCalls atomic.Int64
	gh := fakeGitHub(t, &ghCalls)
	m, err := New(Options{Config: testConfig(t, gh.URL, agent.Addr), Version: "v-test", RecoverEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	base := "http://" + m.Addr().String()

	if code, body := get(t, base+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Errorf("/healthz = %d %s", code, body)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := get(t, base+"/readyz")
		if code == 200 {
			var checks map[string]string
			if err := json.Unmarshal([]byte(body), &checks); err != nil || checks["nomad"] != "ok" || checks["github"] != "ok" {
				t.Errorf("/readyz body = %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d: %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`buildfleet_build_info{version="v-test"} 1`,
		`buildfleet_ready 1`,
		`buildfleet_github_requests_total{code="2xx",endpoint="GET /rate_limit"}`,
		// What an operator alerts on, each with its help text.
		// Some Nomad call, counted: which one answered first (the
		// readiness ping or the fleet's watch) depends on scheduling.
		`buildfleet_nomad_calls_total{operation="GET `,
		`# HELP buildfleet_queue_wait_seconds `,
		`buildfleet_queue_wait_seconds_count{pool="q"} 0`,
		`# HELP buildfleet_label_to_runner_started_seconds `,
		`buildfleet_pool_pending_runners{pool="q"} 0`,
		`buildfleet_pool_running_runners{pool="r"} 0`,
		`buildfleet_pool_hosts{pool="q"} `,
		`buildfleet_pool_hosts_ready{pool="q"} `,
		`buildfleet_requests_finished_total{state="fleet_error"} 0`,
		`buildfleet_builder_results_total{conclusion="failure",pool="q"} 0`,
		`# HELP buildfleet_host_failures_total `,
		`buildfleet_nomad_up 1`,
		`buildfleet_github_up 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "ghp_test") {
		t.Error("/metrics shows a secret")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v on a clean stop", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still serving after Run returned")
	}
	if n := ghCalls.Load(); n != 1 {
		t.Errorf("%d GitHub calls to become ready, want 1 (no polling once reached)", n)
	}
}

func TestNotReadyUntilNomadReached(t *testing.T) {
	var ghCalls atomic.Int64
	gh := fakeGitHub(t, &ghCalls)
	// A closed port: Nomad is down.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	m, err := New(Options{Config: testConfig(t, gh.URL, deadURL)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	base := "http://" + m.Addr().String()
	time.Sleep(700 * time.Millisecond)
	code, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"nomad":"not reached yet"`) {
		t.Errorf("/readyz with Nomad down = %d %s; want 503 naming nomad", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestReadinessFollowsNomad: /readyz is 200 while Nomad answers and 503
// naming Nomad once it has not answered for the grace period.
func TestReadinessFollowsNomad(t *testing.T) {
	var ghCalls atomic.Int64
	gh := fakeGitHub(t, &ghCalls)
	nomadUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/status/leader" {
			io.WriteString(w, strconv.Quote(r.Host)) // the leader's address: this server's own
			return
		}
		http.NotFound(w, r)
	}))
	m, err := New(Options{Config: testConfig(t, gh.URL, nomadUp.URL), RecoverEvery: -1,
		ReadyGrace: time.Second, ProbeEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	base := "http://" + m.Addr().String()
	eventually := func(what string, cond func(code int, body string) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, body := get(t, base+"/readyz")
			if cond(code, body) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /readyz still %d %s", what, code, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	eventually("ready", func(code int, _ string) bool { return code == 200 })
	nomadUp.Close() // Nomad dies
	eventually("nomad down", func(code int, body string) bool {
		return code == http.StatusServiceUnavailable && strings.Contains(body, `"nomad":"unreachable: no answer since `) &&
			strings.Contains(body, `"github":"ok"`)
	})
	if _, body := get(t, base+"/metrics"); !strings.Contains(body, "buildfleet_nomad_up 0") ||
		!strings.Contains(body, "buildfleet_ready 0") ||
		!strings.Contains(body, `buildfleet_nomad_errors_total{kind="network",operation="GET status/leader"}`) {
		t.Error("metrics do not say Nomad is down")
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	c := testConfig(t, "http://127.0.0.1:1", "http://127.0.0.1:1")
	c.GitHub.WebhookSecret = ""
	if _, err := New(Options{Config: c}); err == nil || !strings.Contains(err.Error(), "github.webhook_secret") {
		t.Errorf("New with empty webhook secret: %v", err)
	}
}
