// Package runnerpkg knows which GitHub Actions runner archive each runner
// downloads, and how far that release lags GitHub's.
//
// GitHub refuses runners that lag a new release by more than 30 days (at
// once after a critical security release), so the release is not written
// down anywhere: by default the manager asks GitHub's list of runner
// downloads (about hourly, and on demand) and hands each runner the URL
// and SHA-256 of its platform's archive; the bootstrap verifies the
// archive against that checksum before extracting it. Two configured
// alternatives: runner.freeze keeps the release in use (remembered in the
// store), and a pinned runner.version comes with its own checksums. Both
// warn as they age.
//
//	Run: refresh at start and every RefreshEvery ──▶ latest list (+ when
//	     its version was first seen, kept in the store)
//	In use: latest │ frozen (store) │ pinned (config)
//	For(platform) ──▶ the in-use archive of the platform, or ErrNoPackage
package runnerpkg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/github"
)

// ErrNoPackage: GitHub publishes no runner for the platform (FreeBSD), or
// a pinned release lists none for it.
var ErrNoPackage = errors.New("no runner package for this platform")

// Package is one runner archive a runner downloads.
type Package struct {
	Version  string `json:"version"`
	OS       string `json:"os"`   // GitHub's: linux, osx, win
	Arch     string `json:"arch"` // GitHub's: x64, arm64
	URL      string `json:"url"`
	Filename string `json:"filename"`
	SHA256   string `json:"sha256"`
}

// GitHub is what the cache needs from GitHub.
type GitHub interface {
	ListRunnerApplications(ctx context.Context, owner, repo string) ([]github.RunnerPackage, error)
}

// KV keeps the cache's state across restarts (the store).
type KV interface {
	GetKV(ctx context.Context, key string) (string, error)
	PutKV(ctx context.Context, key, value string) error
}

var _ GitHub = (*github.Client)(nil)

// Options configure a Cache.
type Options struct {
	Config config.Config
	GitHub GitHub
	KV     KV
	Logger *slog.Logger
	// Registerer receives the runner release metrics; nil: none.
	Registerer prometheus.Registerer
	// RefreshEvery is how often GitHub's list is asked for (default 1h).
	RefreshEvery time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Store keys.
const (
	kvInUse  = "runner_packages_in_use" // JSON []Package: the release in use, for freeze
	kvLatest = "runner_latest"          // JSON latestSeen
)

type latestSeen struct {
	Version   string    `json:"version"`
	FirstSeen time.Time `json:"first_seen"`
}

// Cache is the runner release in use and GitHub's latest.
type Cache struct {
	cfg     config.Config
	gh      GitHub
	kv      KV
	log     *slog.Logger
	every   time.Duration
	now     func() time.Time
	metrics *metrics

	refreshMu sync.Mutex // one refresh at a time
	mu        sync.Mutex
	latest    []Package
	seen      latestSeen
	fetchedAt time.Time
	fetchErr  error
	inUse     []Package
}

// New builds a Cache; it asks GitHub nothing until Refresh or Run.
func New(o Options) *Cache {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RefreshEvery <= 0 {
		o.RefreshEvery = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Cache{cfg: o.Config, gh: o.GitHub, kv: o.KV, log: o.Logger, every: o.RefreshEvery, now: o.Now,
		metrics: newMetrics(o.Registerer)}
	if o.Config.Runner.Version != config.RunnerLatest && o.Config.Runner.Version != "" {
		c.inUse = pinned(o.Config.Runner)
	}
	return c
}

// Run refreshes the list at start and every RefreshEvery until ctx ends.
func (c *Cache) Run(ctx context.Context) {
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("asking GitHub for the runner release", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh asks GitHub for its current runner downloads now, and moves the
// release in use to it unless frozen or pinned.
func (c *Cache) Refresh(ctx context.Context) error {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	if len(c.cfg.Repositories) == 0 {
		return errors.New("no repository to ask GitHub about")
	}
	owner, repo, _ := strings.Cut(c.cfg.Repositories[0].Name, "/")
	list, err := c.gh.ListRunnerApplications(ctx, owner, repo)
	if err == nil && len(list) == 0 {
		err = errors.New("GitHub lists no runner downloads")
	}
	now := c.now()
	if err != nil {
		c.mu.Lock()
		c.fetchErr = err
		c.mu.Unlock()
		c.update()
		return err
	}
	latest := make([]Package, 0, len(list))
	for _, p := range list {
		latest = append(latest, Package{Version: versionOf(p.Filename), OS: p.OS, Arch: p.Arch, URL: p.URL,
			Filename: p.Filename, SHA256: strings.ToLower(p.SHA256)})
	}
	version := latest[0].Version
	seen, err := c.loadSeen(ctx)
	if err != nil {
		return err
	}
	if seen.Version != version {
		seen = latestSeen{Version: version, FirstSeen: now}
		if err := c.putJSON(ctx, kvLatest, seen); err != nil {
			return err
		}
		c.log.Info("GitHub publishes a runner release", "version", version)
	}
	inUse, err := c.chooseInUse(ctx, latest)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.latest, c.seen, c.fetchedAt, c.fetchErr, c.inUse = latest, seen, now, nil, inUse
	c.mu.Unlock()
	c.update()
	return nil
}

// chooseInUse: the latest list, or the frozen one (the list in use before,
// from the store; the latest when there was none), or the pinned one.
func (c *Cache) chooseInUse(ctx context.Context, latest []Package) ([]Package, error) {
	r := c.cfg.Runner
	if r.Version != config.RunnerLatest && r.Version != "" {
		return pinned(r), nil
	}
	if r.Freeze {
		var frozen []Package
		b, err := c.kvGet(ctx, kvInUse)
		if err != nil {
			return nil, err
		}
		if b != "" && json.Unmarshal([]byte(b), &frozen) == nil && len(frozen) > 0 {
			return frozen, nil
		}
	}
	if err := c.putJSON(ctx, kvInUse, latest); err != nil {
		return nil, err
	}
	return latest, nil
}

// For returns the archive a runner of the platform downloads. Before the
// first refresh it asks GitHub; a failed refresh keeps the list it had.
func (c *Cache) For(ctx context.Context, plat config.Platform) (Package, error) {
	osName, arch, ok := githubPlatform(plat)
	if !ok {
		return Package{}, fmt.Errorf("%s/%s: %w (GitHub ships none)", plat.Kernel, plat.Arch, ErrNoPackage)
	}
	c.mu.Lock()
	empty := len(c.inUse) == 0
	c.mu.Unlock()
	if empty {
		if err := c.Refresh(ctx); err != nil {
			return Package{}, fmt.Errorf("finding the runner release: %w", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.inUse {
		if p.OS == osName && p.Arch == arch {
			return p, nil
		}
	}
	return Package{}, fmt.Errorf("%s-%s of runner %s: %w", osName, arch, versionOfList(c.inUse), ErrNoPackage)
}

// Status is the runner release as the status page and metrics tell it.
type Status struct {
	Mode    string        `json:"mode"`                   // latest, frozen or pinned
	InUse   string        `json:"in_use"`                 // version the runners download
	Latest  string        `json:"latest"`                 // GitHub's current release ("" before asking)
	Since   time.Time     `json:"latest_since,omitempty"` // when Latest was first seen
	Behind  time.Duration `json:"behind"`                 // how long a newer release than InUse exists
	Warning string        `json:"warning,omitempty"`
	// Error is the last failed refresh's, cleared by a good one.
	Error string `json:"error,omitempty"`
}

// gitHubLimit is how long GitHub keeps accepting a runner after a newer
// release.
const gitHubLimit = 30 * 24 * time.Hour

// Status says which release is in use and how far it lags GitHub's.
func (c *Cache) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Status{Mode: "latest", InUse: versionOfList(c.inUse), Latest: c.seen.Version, Since: c.seen.FirstSeen}
	switch {
	case c.cfg.Runner.Version != config.RunnerLatest && c.cfg.Runner.Version != "":
		s.Mode = "pinned"
	case c.cfg.Runner.Freeze:
		s.Mode = "frozen"
	}
	if c.fetchErr != nil {
		s.Error = c.fetchErr.Error()
	}
	if s.Latest != "" && s.InUse != "" && Older(s.InUse, s.Latest) {
		s.Behind = c.now().Sub(s.Since)
		warnAfter := c.cfg.Runner.WarnAfter.D()
		if warnAfter <= 0 {
			warnAfter = config.DefaultRunnerWarnAfter
		}
		if s.Behind >= warnAfter {
			left := gitHubLimit - s.Behind
			s.Warning = fmt.Sprintf("runner %s (%s) lags GitHub's %s by %d days; GitHub refuses runners 30 days behind (%d days left)",
				s.InUse, s.Mode, s.Latest, int(s.Behind.Hours()/24), max(0, int(left.Hours()/24)))
		}
	}
	return s
}

func (c *Cache) loadSeen(ctx context.Context) (latestSeen, error) {
	c.mu.Lock()
	seen := c.seen
	c.mu.Unlock()
	if seen.Version != "" {
		return seen, nil
	}
	b, err := c.kvGet(ctx, kvLatest)
	if err != nil || b == "" {
		return latestSeen{}, err
	}
	_ = json.Unmarshal([]byte(b), &seen)
	return seen, nil
}

func (c *Cache) kvGet(ctx context.Context, key string) (string, error) {
	if c.kv == nil {
		return "", nil
	}
	return c.kv.GetKV(ctx, key)
}

func (c *Cache) putJSON(ctx context.Context, key string, v any) error {
	if c.kv == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", key, err)
	}
	return c.kv.PutKV(ctx, key, string(b))
}

// pinned is the configured release's archives.
func pinned(r config.Runner) []Package {
	var out []Package
	for _, p := range r.Packages {
		plat, err := config.ParsePlatform(p.Platform)
		if err != nil {
			continue // Validate refuses it
		}
		osName, arch, ok := githubPlatform(plat)
		if !ok {
			continue
		}
		ext := ".tar.gz"
		if osName == "win" {
			ext = ".zip"
		}
		file := fmt.Sprintf("actions-runner-%s-%s-%s%s", osName, arch, r.Version, ext)
		url := p.URL
		if url == "" {
			url = "https://github.com/actions/runner/releases/download/v" + r.Version + "/" + file
		}
		out = append(out, Package{Version: r.Version, OS: osName, Arch: arch, URL: url, Filename: file, SHA256: strings.ToLower(p.SHA256)})
	}
	return out
}

// githubPlatform names a pool platform as GitHub's downloads list does.
func githubPlatform(p config.Platform) (osName, arch string, ok bool) {
	switch p.Kernel {
	case "linux":
		osName = "linux"
	case "darwin":
		osName = "osx"
	case "windows":
		osName = "win"
	default:
		return "", "", false
	}
	switch p.Arch {
	case "amd64":
		arch = "x64"
	case "arm64":
		arch = "arm64"
	default:
		return "", "", false
	}
	return osName, arch, true
}

var versionRE = regexp.MustCompile(`-([0-9]+\.[0-9]+\.[0-9]+)\.(tar\.gz|zip)$`)

// versionOf reads the release from an archive's name
// (actions-runner-<os>-<arch>-<version>.tar.gz).
func versionOf(filename string) string {
	if m := versionRE.FindStringSubmatch(filename); m != nil {
		return m[1]
	}
	return "unknown"
}

func versionOfList(ps []Package) string {
	if len(ps) == 0 {
		return ""
	}
	return ps[0].Version
}

// Older tells whether version a is below b (dotted numbers).
func Older(a, b string) bool {
	x, y := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(x), len(y)); i++ {
		var p, q int
		if i < len(x) {
			p, _ = strconv.Atoi(x[i])
		}
		if i < len(y) {
			q, _ = strconv.Atoi(y[i])
		}
		if p != q {
			return p < q
		}
	}
	return false
}

// metrics are the release gauges.
type metrics struct {
	version *prometheus.GaugeVec
	behind  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	f := promauto.With(reg)
	return &metrics{
		version: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "buildfleet_runner_version_info",
			Help: "The runner release each pool's runners download (version) and GitHub's latest (latest); 1 per pool.",
		}, []string{"pool", "version", "latest", "mode"}),
		behind: f.NewGauge(prometheus.GaugeOpts{
			Name: "buildfleet_runner_behind_seconds",
			Help: "How long GitHub has published a newer runner release than the one in use (0: current). GitHub refuses runners 30 days behind.",
		}),
	}
}

// update sets the gauges from the state.
func (c *Cache) update() {
	if c.metrics == nil {
		return
	}
	s := c.Status()
	c.metrics.version.Reset()
	for _, p := range c.cfg.Pools {
		v := "none"
		if plat, err := config.ParsePlatform(p.Platform); err == nil {
			if osName, arch, ok := githubPlatform(plat); ok {
				c.mu.Lock()
				for _, pk := range c.inUse {
					if pk.OS == osName && pk.Arch == arch {
						v = pk.Version
					}
				}
				c.mu.Unlock()
			}
		}
		c.metrics.version.WithLabelValues(p.Name, v, s.Latest, s.Mode).Set(1)
	}
	c.metrics.behind.Set(s.Behind.Seconds())
	if s.Warning != "" {
		c.log.Warn("runner release lags GitHub's", "in_use", s.InUse, "latest", s.Latest, "mode", s.Mode, "behind", s.Behind.String())
	}
}
