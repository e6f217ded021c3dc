package runnerpkg

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/ghsim"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/store"
)

type env struct {
	sim *ghsim.Server
	gh  *github.Client
	st  *store.Store
	now time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	sim := ghsim.New(ghsim.Options{})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	if err := sim.CreateRepo(ghsim.RepoSpec{Owner: "python", Name: "cpython", DefaultBranch: "main"}); err != nil {
		t.Fatal(err)
	}
	gh, err := github.New(config.GitHub{APIURL: srv.URL + "/", Token: "t0k3n"}, github.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &env{sim: sim, gh: gh, st: st, now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
}

func (e *env) cache(r config.Runner) *Cache {
	cfg := config.Config{Runner: r, Repositories: []config.Repository{{Name: "python/cpython"}},
		Pools: []config.Pool{{Name: "linux", Platform: "linux-x86_64"}, {Name: "mac", Platform: "macos-arm64"}}}
	return New(Options{Config: cfg, GitHub: e.gh, KV: e.st, Now: func() time.Time { return e.now }})
}

var (
	linux   = config.Platform{Kernel: "linux", Arch: "amd64"}
	macARM  = config.Platform{Kernel: "darwin", Arch: "arm64"}
	winARM  = config.Platform{Kernel: "windows", Arch: "arm64"}
	freebsd = config.Platform{Kernel: "freebsd", Arch: "amd64"}
)

func TestLatestFollowsGitHub(t *testing.T) {
	e := newEnv(t)
	c := e.cache(config.Runner{Version: config.RunnerLatest})
	ctx := context.Background()
	p, err := c.For(ctx, linux) // first use asks GitHub
	if err != nil || p.OS != "linux" || p.Arch != "x64" || len(p.SHA256) != 64 || p.Version != "2.900.0" {
		t.Fatalf("For(linux) = %+v, %v", p, err)
	}
	for _, plat := range []config.Platform{macARM, winARM} {
		if p, err := c.For(ctx, plat); err != nil || p.URL == "" {
			t.Errorf("For(%v) = %+v, %v: macOS and Windows arm64 work like the rest", plat, p, err)
		}
	}
	if _, err := c.For(ctx, freebsd); !errors.Is(err, ErrNoPackage) {
		t.Errorf("For(freebsd) err = %v, want ErrNoPackage", err)
	}
	e.sim.ReleaseRunner("2.901.0")
	if p, _ := c.For(ctx, linux); p.Version != "2.900.0" {
		t.Errorf("before a refresh: %s", p.Version)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := c.For(ctx, linux); p.Version != "2.901.0" {
		t.Errorf("after a refresh: %s, want the new release", p.Version)
	}
	if s := c.Status(); s.InUse != "2.901.0" || s.Latest != "2.901.0" || s.Behind != 0 || s.Warning != "" {
		t.Errorf("status %+v", s)
	}
}

// TestFrozenKeepsItsReleaseAndWarns: a frozen fleet keeps the release it
// ran, across a restart, and warns once a newer one is WarnAfter old.
func TestFrozenKeepsItsReleaseAndWarns(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.cache(config.Runner{Version: config.RunnerLatest}).Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	e.sim.ReleaseRunner("2.901.0")
	frozen := config.Runner{Version: config.RunnerLatest, Freeze: true, WarnAfter: config.Duration(14 * 24 * time.Hour)}
	c := e.cache(frozen) // a restart with freeze on
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := c.For(ctx, linux); p.Version != "2.900.0" {
		t.Errorf("frozen runner %s, want the release in use before", p.Version)
	}
	e.now = e.now.Add(13 * 24 * time.Hour)
	if s := c.Status(); s.Mode != "frozen" || s.Latest != "2.901.0" || s.Warning != "" || s.Behind != 13*24*time.Hour {
		t.Errorf("after 13 days: %+v", s)
	}
	e.now = e.now.Add(2 * 24 * time.Hour)
	c = e.cache(frozen) // another restart: the first sighting is remembered
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	s := c.Status()
	if !strings.Contains(s.Warning, "lags GitHub's 2.901.0 by 15 days") || !strings.Contains(s.Warning, "15 days left") {
		t.Errorf("after 15 days: %+v", s)
	}
}

func TestPinnedUsesItsChecksums(t *testing.T) {
	e := newEnv(t)
	sum := strings.Repeat("ab", 32)
	c := e.cache(config.Runner{Version: "2.800.0", Packages: []config.RunnerPackage{
		{Platform: "linux-x86_64", SHA256: strings.ToUpper(sum)},
		{Platform: "macos-arm64", SHA256: sum, URL: "https://mirror.example/r.tar.gz"},
	}})
	ctx := context.Background()
	p, err := c.For(ctx, linux)
	if err != nil || p.SHA256 != sum || p.Version != "2.800.0" ||
		!strings.HasSuffix(p.URL, "/v2.800.0/actions-runner-linux-x64-2.800.0.tar.gz") {
		t.Errorf("pinned linux %+v, %v", p, err)
	}
	if p, _ := c.For(ctx, macARM); p.URL != "https://mirror.example/r.tar.gz" {
		t.Errorf("pinned mac %+v", p)
	}
	if _, err := c.For(ctx, winARM); !errors.Is(err, ErrNoPackage) {
		t.Errorf("unpinned platform: %v", err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if s := c.Status(); s.Mode != "pinned" || s.InUse != "2.800.0" || s.Latest != "2.900.0" {
		t.Errorf("status %+v", s)
	}
}

func TestOlder(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{{"2.900.0", "2.901.0", true}, {"2.901.0", "2.901.0", false}, {"2.1000.0", "2.999.9", false}, {"2.9", "2.9.1", true}} {
		if got := Older(tc.a, tc.b); got != tc.want {
			t.Errorf("Older(%s, %s) = %v", tc.a, tc.b, got)
		}
	}
}
