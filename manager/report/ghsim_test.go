package report

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/ghsim"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/store"
)

const simRepo = "python/cpython"

// simFixture is ghsim with a repository and an open PR whose head differs
// from the default branch, and a reporter writing to it through the real
// GitHub client.
type simFixture struct {
	sim  *ghsim.Server
	url  string
	cl   *github.Client
	rp   *Reporter
	sha  string
	pr   int
	stop func()
}

func newSim(t *testing.T, o ghsim.Options, report, comment string, limits []github.Limit) *simFixture {
	t.Helper()
	return newSimOn(t, o, report, comment, limits, false)
}

// newSimOn is newSim; inProcess serves ghsim without a socket, through its
// handler, so that the whole fixture can run in a synctest bubble (fake
// time for the reporter's pacing and ghsim's secondary-limit windows alike).
func newSimOn(t *testing.T, o ghsim.Options, report, comment string, limits []github.Limit, inProcess bool) *simFixture {
	t.Helper()
	sim := ghsim.New(o)
	var transport http.RoundTripper
	url := "http://ghsim.invalid"
	if inProcess {
		sim.SetBaseURL(url)
		transport = handlerTransport{sim.Handler()}
	} else {
		var err error
		if url, err = sim.Start("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { sim.Close() })
	if err := sim.CreateRepo(ghsim.RepoSpec{Owner: "python", Name: "cpython", Org: true}); err != nil {
		t.Fatal(err)
	}
	pr, err := sim.OpenPR(simRepo, ghsim.PRSpec{Title: "fix", Author: "alice", Fork: "alice", HeadSHA: strings.Repeat("ab", 20)})
	if err != nil {
		t.Fatal(err)
	}
	ghc := config.GitHub{APIURL: url, Token: "t0ken"}
	if o.AppID != 0 {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "app.pem")
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
		if err := os.WriteFile(f, pemBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		ghc = config.GitHub{APIURL: url, App: config.App{ID: o.AppID, InstallationID: 7, PrivateKeyFile: f}}
	}
	cl, err := github.New(ghc, github.Options{Transport: transport, Budget: github.NewBudget(github.BudgetOptions{Limits: limits})})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := config.Config{Repositories: []config.Repository{{Name: simRepo, Report: report, Comment: comment,
		ContextPrefix: config.DefaultContextPrefix}}}
	rp := New(Options{Config: cfg, Store: st, GitHub: cl, BackoffMax: time.Second, Idle: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rp.Run(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return &simFixture{sim: sim, url: url, cl: cl, rp: rp, sha: strings.Repeat("ab", 20), pr: pr, stop: stop}
}

func (f *simFixture) result(req string, builders int, pool string, job int64, state, desc string) Result {
	now := time.Now()
	r := Result{Request: Request{ID: req, Repo: simRepo, PR: f.pr, SHA: f.sha, Tier: "quick", Actor: "alice", Builders: builders},
		Pool: pool, JobID: job, HTMLURL: fmt.Sprintf("%s/python/cpython/actions/runs/1/job/%d", f.url, job),
		Host: "host-" + pool, State: state, Description: desc, StartedAt: now.Add(-time.Minute)}
	if state != StatePending {
		r.CompletedAt = now
	}
	return r
}

// handlerTransport serves requests with a handler in the same goroutine:
// no socket, so nothing blocks outside a synctest bubble.
type handlerTransport struct{ h http.Handler }

func (ht handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	ht.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// waitIdle waits until the queue is empty.
func (f *simFixture) waitIdle(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if n, err := f.rp.st.PendingReports(context.Background()); err == nil && n == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("queue not empty after %v", within)
}

func (f *simFixture) writes(method, part string) (n, limited int) {
	for _, c := range f.sim.Calls() {
		if c.Method == method && strings.Contains(c.Path, part) {
			n++
			if c.Status == 403 || c.Status == 429 {
				limited++
			}
		}
	}
	return n, limited
}

// latest returns the newest status per context on sha.
func (f *simFixture) latest(t *testing.T, sha string) map[string]*gh.RepoStatus {
	t.Helper()
	sts, _, err := f.cl.REST().Repositories.ListStatuses(context.Background(), "python", "cpython", sha, &gh.ListOptions{PerPage: 100})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*gh.RepoStatus{}
	for _, s := range sts {
		if out[s.GetContext()] == nil {
			out[s.GetContext()] = s
		}
	}
	return out
}

func TestStatusesOnThePRHead(t *testing.T) {
	f := newSim(t, ghsim.Options{}, config.ReportStatus, config.CommentOnFinish, nil)
	ctx := context.Background()
	for i, p := range []string{"linux", "macos", "windows"} {
		if err := f.rp.Report(ctx, f.result("r1", 3, p, int64(100+i), StatePending, "running on host-"+p)); err != nil {
			t.Fatal(err)
		}
	}
	f.waitIdle(t, 10*time.Second)
	for i, tc := range [][2]string{{"linux", StateSuccess}, {"macos", StateFailure}, {"windows", StateError}} {
		desc := "build " + tc[1]
		if tc[1] == StateError {
			desc = "runner lost: node went away"
		}
		if err := f.rp.Report(ctx, f.result("r1", 3, tc[0], int64(100+i), tc[1], desc)); err != nil {
			t.Fatal(err)
		}
	}
	f.waitIdle(t, 10*time.Second)
	got := f.latest(t, f.sha)
	if len(got) != 3 {
		t.Fatalf("%d contexts on the PR head, want 3: %v", len(got), got)
	}
	for i, tc := range [][2]string{{"linux", "success"}, {"macos", "failure"}, {"windows", "error"}} {
		s := got["buildfleet/"+tc[0]]
		if s == nil || s.GetState() != tc[1] || s.GetTargetURL() != fmt.Sprintf("%s/python/cpython/actions/runs/1/job/%d", f.url, 100+i) {
			t.Errorf("%s: %+v", tc[0], s)
		}
	}
	if d := got["buildfleet/windows"].GetDescription(); !strings.Contains(d, "runner lost: node went away") || !strings.Contains(d, "not this PR") {
		t.Errorf("error description %q", d)
	}
	if def := f.latest(t, "main"); len(def) != 0 {
		t.Errorf("statuses on the default branch: %v", def)
	}
	if n, _ := f.writes("POST", "/statuses/"); n > 3*3 {
		t.Errorf("%d status writes for 3 builders, want ≤ 3 per builder", n)
	}
	cms, _, err := f.cl.REST().Issues.ListComments(ctx, "python", "cpython", f.pr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cms) != 1 || !strings.Contains(cms[0].GetBody(), "1 passed, 1 failed, 1 fleet error") {
		t.Errorf("summary comments %d: %v", len(cms), cms)
	}
}

func TestCheckRunsWithAppAuth(t *testing.T) {
	f := newSim(t, ghsim.Options{AppID: 4242}, config.ReportChecks, config.CommentOff, nil)
	ctx := context.Background()
	for i, p := range []string{"linux", "macos", "windows"} {
		if err := f.rp.Report(ctx, f.result("r1", 3, p, int64(100+i), StatePending, "running on host-"+p)); err != nil {
			t.Fatal(err)
		}
	}
	f.waitIdle(t, 10*time.Second)
	for i, tc := range [][2]string{{"linux", StateSuccess}, {"macos", StateFailure}, {"windows", StateError}} {
		if err := f.rp.Report(ctx, f.result("r1", 3, tc[0], int64(100+i), tc[1], "because "+tc[1])); err != nil {
			t.Fatal(err)
		}
	}
	f.waitIdle(t, 10*time.Second)
	res, _, err := f.cl.REST().Checks.ListCheckRunsForRef(ctx, "python", "cpython", f.sha, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.GetTotal() != 3 {
		t.Fatalf("%d check runs, want 3", res.GetTotal())
	}
	want := map[string]string{"buildfleet/linux": "success", "buildfleet/macos": "failure", "buildfleet/windows": "neutral"}
	for _, c := range res.CheckRuns {
		if c.GetConclusion() != want[c.GetName()] || c.GetStatus() != "completed" || !strings.Contains(c.GetDetailsURL(), "/job/") ||
			c.GetHeadSHA() != f.sha || !strings.Contains(c.GetOutput().GetSummary(), "@alice") {
			t.Errorf("check run %s: %s/%s details %s summary %q", c.GetName(), c.GetStatus(), c.GetConclusion(), c.GetDetailsURL(), c.GetOutput().GetSummary())
		}
	}
	if n, _ := f.writes("POST", "/check-runs"); n != 3 {
		t.Errorf("%d check runs created, want 3", n)
	}
	if n, _ := f.writes("PATCH", "/check-runs/"); n != 3 {
		t.Errorf("%d check run updates, want 3", n)
	}
	// A token may not write check runs, as on GitHub.
	tok, err := github.New(config.GitHub{APIURL: f.url, Token: "pat"}, github.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.CreateCheckRun(ctx, "python", "cpython", github.CheckRun{Name: "x", HeadSHA: f.sha}); err == nil {
		t.Error("a token created a check run")
	}
}

// TestBurstUnderSecondaryLimit: 100 requests × 5 builders, each in
// progress then final, against a ghsim that enforces a (scaled) secondary
// limit and injects a few secondary-limit answers with Retry-After.
func TestBurstUnderSecondaryLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("burst")
	}
	// In a bubble: the reporter's windows and ghsim's are measured on the
	// same fake clock, so a busy machine cannot make them drift apart.
	synctest.Test(t, func(t *testing.T) { burstUnderSecondaryLimit(t) })
}

func burstUnderSecondaryLimit(t *testing.T) {
	limits := []github.Limit{{N: 80, Per: 300 * time.Millisecond}, {N: 500, Per: 2 * time.Second}}
	f := newSimOn(t, ghsim.Options{SecondaryLimits: []ghsim.SecondaryLimit{{N: 80, Per: 270 * time.Millisecond}, {N: 500, Per: 1800 * time.Millisecond}}},
		config.ReportStatus, config.CommentOff, limits, true)
	if err := f.sim.AddFault(ghsim.Fault{Kind: ghsim.FaultSecondary, Method: "POST", Path: "/statuses/", Count: 3, Ratio: 0.01, RetryAfter: 1}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pools := []string{"linux", "macos", "windows", "freebsd", "arm64"}
	start := time.Now()
	for _, state := range []string{StatePending, ""} {
		for r := range 100 {
			for i, p := range pools {
				st := state
				if st == "" {
					st = []string{StateSuccess, StateFailure, StateError}[(r+i)%3]
				}
				if err := f.rp.Report(ctx, f.result(fmt.Sprintf("r%03d", r), 5, p, int64(r*10+i), st, "build "+st)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	f.waitIdle(t, 2*time.Minute)
	took := time.Since(start)
	rows := 0
	for r := range 100 {
		reps, err := f.rp.st.ReportsOfRequest(ctx, fmt.Sprintf("r%03d", r))
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range reps {
			rows++
			if row.Error != "" {
				t.Errorf("%s %s: %s", row.RequestID, row.Context, row.Error)
			}
		}
	}
	// Every builder's last status is its final one (one context per pool
	// on one SHA: the newest request's; check each request's row instead).
	got := f.latest(t, f.sha)
	for _, p := range pools {
		if s := got["buildfleet/"+p]; s == nil || s.GetState() == "pending" {
			t.Errorf("%s: %+v", p, s)
		}
	}
	n, limited := f.writes("POST", "/statuses/")
	injected := 0
	for _, c := range f.sim.Calls() {
		if c.Fault == ghsim.FaultSecondary {
			injected++
		}
	}
	t.Logf("500 builders: %d status writes (%.2f per builder), %d answered 403 (%d injected), %v", n, float64(n)/500, limited, injected, took)
	if rows != 500 {
		t.Errorf("%d rows, want 500", rows)
	}
	if limited > injected {
		t.Errorf("%d writes refused by the secondary limit beyond the %d injected", limited-injected, injected)
	}
	if n-limited > 2*500 {
		t.Errorf("%d successful writes for 500 builders, want ≤ 2 each", n-limited)
	}
}
