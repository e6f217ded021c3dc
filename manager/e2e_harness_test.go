package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/ghsim"
	"github.com/buildfleet/buildfleet/manager/github"
)

const (
	e2eRepo   = "python/cpython"
	e2eSecret = "e2e-webhook-secret"
	quick     = "🔨 test-with-buildbots"
)

// harness is ghsim with a repository, people and an open fork PR, plus a
// manager whose webhook ghsim calls.
type harness struct {
	t    testing.TB
	gh   *ghsim.Server
	cfg  config.Config
	m    *Manager
	stop func()
	pr   int
	sha  string
	// logs is the manager's log.
	logs syncBuffer
	// recoverEvery is the manager's RecoverEvery (default: off).
	recoverEvery time.Duration
	// recoverMinAge is the manager's RecoverMinAge (default 2m).
	recoverMinAge time.Duration
	// waitingAfter is the manager's WaitingAfter (default 2m).
	waitingAfter time.Duration
	// reconcileEvery is the manager's ReconcileEvery (default 1m).
	reconcileEvery time.Duration
	// writeLimits are the manager's WriteLimits (default GitHub's).
	writeLimits []github.Limit
}

func startGHSim(t testing.TB) (*ghsim.Server, int, string) {
	t.Helper()
	return startGHSimWith(t, ghsim.Options{})
}

func startGHSimWith(t testing.TB, o ghsim.Options) (*ghsim.Server, int, string) {
	t.Helper()
	gh := ghsim.New(o)
	if _, err := gh.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gh.Close() })
	wf, err := filepath.Abs("../workflows")
	if err != nil {
		t.Fatal(err)
	}
	if err := gh.CreateRepo(ghsim.RepoSpec{Owner: "python", Name: "cpython", Org: true, WorkflowsDir: wf}); err != nil {
		t.Fatal(err)
	}
	for login, role := range map[string]string{"triager": "triage", "reader": "read", "core": "admin"} {
		if err := gh.AddCollaborator(e2eRepo, login, role); err != nil {
			t.Fatal(err)
		}
	}
	gh.AddUser("contributor")
	sha := strings.Repeat("ab", 20)
	n, err := gh.OpenPR(e2eRepo, ghsim.PRSpec{Title: "gh-1: fix", Author: "contributor", Fork: "contributor", HeadSHA: sha})
	if err != nil {
		t.Fatal(err)
	}
	return gh, n, sha
}

func e2eConfig(t testing.TB, ghURL string) config.Config {
	c := config.Default()
	c.Listen = "127.0.0.1:0"
	c.PublicURL = "http://buildfleet.test"
	c.Store.Path = filepath.Join(t.TempDir(), "buildfleet.db")
	c.GitHub.APIURL = ghURL + "/"
	c.GitHub.Token = "ghs_e2e"
	c.GitHub.WebhookSecret = e2eSecret
	c.Nomad.Address = "http://127.0.0.1:1"
	// The demo workflow: same inputs as buildbots.yml, steps that take a second.
	c.Repositories = []config.Repository{{Name: e2eRepo, Workflow: "quick-demo.yml"}}
	c.Pools = []config.Pool{
		{Name: "linux-x86_64-quick", Platform: "linux-x86_64", Tier: "quick", Labels: []string{"self-hosted", "buildfleet", "linux", "x86_64", "quick"}, Stable: true},
		{Name: "macos-arm64-quick", Platform: "macos-arm64", Tier: "quick", Labels: []string{"self-hosted", "buildfleet", "macos", "arm64", "quick"}, Stable: true},
		{Name: "linux-x86_64-refleak", Platform: "linux-x86_64", Tier: "refleak", Labels: []string{"self-hosted", "buildfleet", "linux", "x86_64", "refleak"}, Stable: true},
	}
	c.ApplyDefaults()
	return c
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessWith(t, ghsim.Options{}, -1)
}

func newHarnessWith(t *testing.T, o ghsim.Options, recoverEvery time.Duration) *harness {
	t.Helper()
	gh, pr, sha := startGHSimWith(t, o)
	h := &harness{t: t, gh: gh, pr: pr, sha: sha, cfg: e2eConfig(t, gh.URL()), recoverEvery: recoverEvery}
	h.start()
	if _, err := gh.AddHook(e2eRepo, "http://"+h.m.Addr().String()+"/webhook", e2eSecret, []string{"pull_request", "workflow_job", "workflow_run"}); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) start() {
	h.t.Helper()
	var ln = h.listener()
	m, err := New(Options{Config: h.cfg, Listener: ln, RetryEvery: 100 * time.Millisecond, RecoverEvery: h.recoverEvery, RecoverMinAge: h.recoverMinAge,
		WaitingAfter: h.waitingAfter, ReconcileEvery: h.reconcileEvery, WriteLimits: h.writeLimits, Logger: testLogger(&h.logs)})
	if err != nil {
		h.t.Fatal(err)
	}
	h.m = m
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	h.stop = func() { cancel(); <-done }
	h.t.Cleanup(h.stop)
}

// testLogger is the manager's log in end-to-end tests: kept at debug level
// in buf (tests check that no secret reaches it), and with
// BUILDFLEET_TEST_LOG=debug|info also on stderr, for looking into a failure.
func testLogger(buf *syncBuffer) *slog.Logger {
	var w io.Writer = buf
	var lvl slog.Level
	if v := os.Getenv("BUILDFLEET_TEST_LOG"); v != "" && lvl.UnmarshalText([]byte(v)) == nil {
		w = io.MultiWriter(buf, os.Stderr)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// syncBuffer is a log sink shared by the manager's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// listener reuses the previous address on a restart, so ghsim's hook URL
// stays valid.
func (h *harness) listener() net.Listener {
	addr := "127.0.0.1:0"
	if h.m != nil {
		addr = h.m.Addr().String()
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		h.t.Fatal(err)
	}
	return l
}

// runs returns ghsim's runs of the repository, with their inputs.
func (h *harness) runs() []map[string]any {
	var out []map[string]any
	h.getJSON("/_ghsim/repos/"+e2eRepo+"/runs", &out)
	return out
}

func (h *harness) comments() []map[string]any {
	var out []map[string]any
	h.getJSON("/_ghsim/repos/"+e2eRepo+"/comments", &out)
	return out
}

func (h *harness) labels() []string {
	var out []struct{ Name string }
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/repos/%s/issues/%d/labels", h.gh.URL(), e2eRepo, h.pr), nil)
	req.Header.Set("Authorization", "Bearer test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&out)
	names := make([]string, len(out))
	for i, l := range out {
		names[i] = l.Name
	}
	return names
}

func (h *harness) getJSON(path string, v any) {
	h.t.Helper()
	resp, err := http.Get(h.gh.URL() + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		h.t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
}

// managerCalls returns the REST calls the manager made, without the
// readiness probe and the test's own reads.
func (h *harness) managerCalls() []ghsim.Call {
	var out []ghsim.Call
	for _, c := range h.gh.Calls() {
		// Not per request: the readiness probe, the hourly look at GitHub's
		// runner release, and the test's own reads.
		if c.Path == "/rate_limit" || strings.HasSuffix(c.Path, "/actions/runners/downloads") ||
			(c.Method == "GET" && strings.HasSuffix(c.Path, "/labels")) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// calls counts ghsim's REST calls whose "METHOD path" contains s.
func (h *harness) calls(method, pathPart string) int {
	n := 0
	for _, c := range h.gh.Calls() {
		if c.Method == method && strings.Contains(c.Path, pathPart) && c.Status < 400 {
			n++
		}
	}
	return n
}

// eventually polls cond until it holds or 20s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runnerDir is a temporary dir that runners reach: they run as uids of
// their own (isolate.sh), and t.TempDir's parent is private to the test's
// user. mode 0755 lets them read and run what is in it, 01777 also write.
func runnerDir(t testing.TB, mode os.FileMode) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "buildfleet-runner-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}
