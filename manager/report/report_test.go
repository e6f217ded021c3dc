package report

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/store"
)

// fakeGitHub records writes with the fake time they were sent at.
type fakeGitHub struct {
	mu       sync.Mutex
	now      func() time.Time
	writes   []string
	at       []time.Time
	checks   map[int64]github.CheckRun
	comments map[int64]string
	next     int64
	fail     []error // returned by the next writes, in order
}

func (g *fakeGitHub) write(s string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.writes = append(g.writes, s)
	g.at = append(g.at, g.now())
	if len(g.fail) > 0 {
		err := g.fail[0]
		g.fail = g.fail[1:]
		return err
	}
	return nil
}

func (g *fakeGitHub) CreateStatus(_ context.Context, _, _, sha, state, url, desc, ctxName string) error {
	return g.write(fmt.Sprintf("status %s %s %s %s", ctxName, state, url, desc))
}

// LatestStatus reads back the newest status write of the context, as
// GitHub keeps every status posted (also when its answer was lost).
func (g *fakeGitHub) LatestStatus(_ context.Context, _, _, _, ctxName string) (github.Status, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := len(g.writes) - 1; i >= 0; i-- {
		f := strings.SplitN(g.writes[i], " ", 5)
		if len(f) == 5 && f[0] == "status" && f[1] == ctxName {
			return github.Status{State: f[2], TargetURL: f[3], Description: f[4]}, nil
		}
	}
	return github.Status{}, github.ErrNotFound
}

func (g *fakeGitHub) CreateCheckRun(_ context.Context, _, _ string, cr github.CheckRun) (int64, error) {
	if err := g.write("check_create " + cr.Name + " " + cr.Status + " " + cr.Conclusion); err != nil {
		return 0, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.next++
	g.checks[g.next] = cr
	return g.next, nil
}

func (g *fakeGitHub) UpdateCheckRun(_ context.Context, _, _ string, id int64, cr github.CheckRun) error {
	if err := g.write(fmt.Sprintf("check_update %d %s %s %s", id, cr.Name, cr.Status, cr.Conclusion)); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checks[id] = cr
	return nil
}

func (g *fakeGitHub) FindCheckRun(_ context.Context, _, _, _, name, ext string) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, c := range g.checks {
		if c.Name == name && c.ExternalID == ext {
			return id, nil
		}
	}
	return 0, github.ErrNotFound
}

func (g *fakeGitHub) Comment(_ context.Context, _, _ string, _ int, body string) (int64, error) {
	if err := g.write("comment_create"); err != nil {
		return 0, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.next++
	g.comments[g.next] = body
	return g.next, nil
}

func (g *fakeGitHub) EditComment(_ context.Context, _, _ string, id int64, body string) error {
	if err := g.write("comment_edit"); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.comments[id] = body
	return nil
}

func (g *fakeGitHub) FindComment(_ context.Context, _, _ string, _ int, marker string) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, b := range g.comments {
		if strings.Contains(b, marker) {
			return id, nil
		}
	}
	return 0, github.ErrNotFound
}

// fakeClock advances only when the reporter sleeps.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

type fixture struct {
	rp  *Reporter
	gh  *fakeGitHub
	clk *fakeClock
	st  *store.Store
	reg *prometheus.Registry
}

func newFixture(t *testing.T, report, comment string) *fixture {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &fakeClock{t: time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)}
	gh := &fakeGitHub{now: clk.Now, checks: map[int64]github.CheckRun{}, comments: map[int64]string{}}
	cfg := config.Config{Repositories: []config.Repository{{Name: "python/cpython", Report: report, Comment: comment,
		ContextPrefix: "buildbot/"}}}
	reg := prometheus.NewRegistry()
	rp := New(Options{Config: cfg, Store: st, GitHub: gh, Registerer: reg,
		Now: clk.Now, Sleep: clk.Sleep, BackoffBase: time.Second, BackoffMax: 2 * time.Minute})
	return &fixture{rp: rp, gh: gh, clk: clk, st: st, reg: reg}
}

const sha = "0123456789abcdef0123456789abcdef01234567"

func result(req string, builders int, pool, state string) Result {
	return Result{Request: Request{ID: req, Repo: "python/cpython", PR: 7, SHA: sha, Tier: "quick", Actor: "alice", Builders: builders},
		Pool: pool, JobID: int64(len(pool)), HTMLURL: "https://gh/job/" + pool, Host: "host-" + pool, State: state,
		Description: "build " + state}
}

func (f *fixture) report(t *testing.T, rs ...Result) {
	t.Helper()
	for _, r := range rs {
		if err := f.rp.Report(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCoalescesSupersededUpdates(t *testing.T) {
	f := newFixture(t, config.ReportStatus, config.CommentOff)
	queued := result("r1", 1, "linux", StatePending)
	running := queued
	running.Description, running.StartedAt = "running on host-linux", f.clk.Now()
	done := result("r1", 1, "linux", StateFailure)
	done.CompletedAt = f.clk.Now().Add(3 * time.Minute)
	f.report(t, queued, running, done)
	if err := f.rp.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"status buildbot/linux failure https://gh/job/linux build failure in 3m0s"}
	if fmt.Sprint(f.gh.writes) != fmt.Sprint(want) {
		t.Errorf("writes %q, want %q", f.gh.writes, want)
	}
	if n := value(f.rp.m.coalesced); n != 2 {
		t.Errorf("coalesced %v, want 2", n)
	}
	// A late pending and a replayed final write nothing.
	f.report(t, running, done)
	if err := f.rp.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.gh.writes) != 1 {
		t.Errorf("after a late pending and a replay: %q", f.gh.writes)
	}
}

func TestErrorIsNeverTheFailureOfThePR(t *testing.T) {
	for _, tc := range []struct {
		name, report, want string
	}{
		{"status", config.ReportStatus, "status buildbot/linux error https://gh/job/linux fleet error, not this PR: runner lost: node down"},
		{"check", config.ReportChecks, "check_create buildbot/linux completed neutral"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.report, config.CommentOff)
			r := result("r1", 1, "linux", StateError)
			r.Description = "runner lost: node down"
			f.report(t, r)
			if err := f.rp.Drain(context.Background()); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(f.gh.writes) != fmt.Sprint([]string{tc.want}) {
				t.Errorf("writes %q, want %q", f.gh.writes, tc.want)
			}
			if tc.report == config.ReportChecks {
				cr := f.gh.checks[1]
				if !strings.Contains(cr.Summary, "runner lost: node down") || cr.ExternalID != "r1/linux" || cr.DetailsURL != "https://gh/job/linux" {
					t.Errorf("check run %+v", cr)
				}
			}
		})
	}
}

func TestCheckRunCreatedOnceThenUpdated(t *testing.T) {
	f := newFixture(t, config.ReportChecks, config.CommentOff)
	running := result("r1", 1, "linux", StatePending)
	running.StartedAt = f.clk.Now()
	f.report(t, running)
	if err := f.rp.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A crash after GitHub created the check run but before its id was
	// stored: the next write finds it by name and external id.
	if err := f.st.ReportRemote(context.Background(), "r1", "buildbot/linux", 0); err != nil {
		t.Fatal(err)
	}
	f.report(t, result("r1", 1, "linux", StateSuccess))
	if err := f.rp.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"check_create buildbot/linux in_progress ", "check_update 1 buildbot/linux completed success"}
	if fmt.Sprint(f.gh.writes) != fmt.Sprint(want) {
		t.Errorf("writes %q, want %q", f.gh.writes, want)
	}
}

func TestSummaryCommentOnceWhenAllFinal(t *testing.T) {
	f := newFixture(t, config.ReportStatus, config.CommentOnFinish)
	f.report(t, result("r1", 2, "linux", StateSuccess))
	if err := f.rp.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.gh.comments) != 0 {
		t.Fatalf("a comment before every builder is final: %v", f.gh.comments)
	}
	lost := result("r1", 2, "macos", StateError)
	lost.Description = "runner lost"
	f.report(t, lost)
	if err := f.rp.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.gh.comments) != 1 {
		t.Fatalf("comments %v, want one", f.gh.comments)
	}
	body := f.gh.comments[1]
	for _, s := range []string{"1 passed, 0 failed, 1 fleet error", "`buildbot/linux` | ✅ success", "[log](https://gh/job/macos)",
		"fleet error: runner lost", "none is required", summaryMarker("r1")} {
		if !strings.Contains(body, s) {
			t.Errorf("comment lacks %q:\n%s", s, body)
		}
	}
	// Replays do not comment again.
	f.report(t, result("r1", 2, "linux", StateSuccess), lost)
	if err := f.rp.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(f.gh.writes, "\n"), "comment_"); n != 1 {
		t.Errorf("%d comment writes, want 1: %q", n, f.gh.writes)
	}
}

func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
