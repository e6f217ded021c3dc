// Package status is the manager's status page: who asked for which build,
// what became of it, and what the pools look like. It is server-rendered
// with html/template (labels, logins and reasons come from GitHub and are
// untrusted; the template escapes them), needs no JavaScript, and has JSON
// twins under /api/v1 for scripts.
//
// It reads the store and the config only; it never shows a secret. The
// views copy the fields they show one by one, so a secret added to a row or
// to the config later does not reach a page by accident.
package status

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Store is what the pages read: the requests and, when the fleet records
// them, the runners.
type Store interface {
	ListRequests(ctx context.Context, limit int) ([]store.Request, error)
	Request(ctx context.Context, id string) (store.Request, error)
}

// RunnerStore is the fleet's part of the store. A Store that also
// implements it gets runner rows on the request page and pending/running
// counts per pool.
type RunnerStore interface {
	RunnersOfRequest(ctx context.Context, requestID string) ([]store.Runner, error)
	ActiveRunners(ctx context.Context, pool string, states ...string) (int, error)
}

var (
	_ Store       = (*store.Store)(nil)
	_ RunnerStore = (*store.Store)(nil)
)

// Fleet reports the donated hosts of a pool: what donors look at to see
// their host's health and load. The store does not know hosts (Nomad
// does), so the manager implements this over its Nomad client; until it
// does, Options.Fleet is nil and the page says "not available".
type Fleet interface {
	Hosts(ctx context.Context, pool config.Pool) ([]Host, error)
}

// Host is one Nomad client of a pool, as a donor sees it.
type Host struct {
	Name       string `json:"name"`
	Datacenter string `json:"datacenter"`
	// Status is Nomad's node status: initializing, ready, down, disconnected.
	Status string `json:"status"`
	// Eligible is false while the donor paused the host (ineligible or
	// draining).
	Eligible bool `json:"eligible"`
	Draining bool `json:"draining"`
	// Running is the number of runner allocations on the host; Slots the
	// number the donor offered (0 when unknown).
	Running int `json:"running"`
	Slots   int `json:"slots"`
	// LastSeen is when Nomad last changed the node's status (the hosts
	// page has the last heartbeat the manager saw).
	LastSeen time.Time `json:"last_seen,omitzero"`
	NodePool string    `json:"node_pool"`
	// Isolation is what the host declares (none, user, container, vm;
	// "" when nothing), checked against pools' min_isolation.
	Isolation string `json:"isolation"`
	// Placeable is true when Nomad could place the pool's runner on the
	// host now (node pool, datacenter, ready, eligible, driver healthy,
	// the job's constraints); Why says why not.
	Placeable bool   `json:"placeable"`
	Why       string `json:"not_placeable_because,omitempty"`
}

// Options configure the status pages.
type Options struct {
	// Store is read for requests (and runners, see RunnerStore).
	Store Store
	// Config gives the pools and the GitHub web URL for links; only those
	// parts are read.
	Config config.Config
	// Fleet reports hosts per pool; nil shows "not available".
	Fleet Fleet
	// Queue lists the builders waiting for a host; nil shows "not
	// available".
	Queue Queue
	// Health reports every host's health, failures and notices; nil shows
	// "not available".
	Health HostHealth
	// Runner reports the runner release in use against GitHub's latest;
	// nil shows none.
	Runner RunnerReleases
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
	// Now is the clock for ages (default time.Now).
	Now func() time.Time
	// Limit is how many recent requests the list shows (default 50).
	Limit int
}

type server struct {
	st      Store
	runners RunnerStore // nil when the store has no runners
	fleet   Fleet
	hist    History
	queue   Queue
	health  HostHealth
	release RunnerReleases
	pools   []config.Pool
	webURL  string
	log     *slog.Logger
	now     func() time.Time
	limit   int
	pages   map[string]*template.Template
}

// New returns the handler of the status pages and their JSON API. Its
// patterns are those of Patterns.
func New(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Limit <= 0 {
		o.Limit = 50
	}
	s := &server{
		st: o.Store, fleet: o.Fleet, pools: o.Config.Pools, webURL: o.Config.GitHub.WebURL,
		log: o.Logger, now: o.Now, limit: o.Limit, pages: parsePages(),
	}
	s.runners, _ = o.Store.(RunnerStore)
	s.hist, _ = o.Store.(History)
	s.queue, s.health, s.release = o.Queue, o.Health, o.Runner
	if s.hist == nil {
		s.hist = noHistory{}
	}

	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /requests/{id}", s.request)
	mux.HandleFunc("GET /pools", s.poolsPage)
	mux.HandleFunc("GET /api/v1/requests", s.apiRequests)
	mux.HandleFunc("GET /api/v1/requests/{id}", s.apiRequest)
	mux.HandleFunc("GET /api/v1/pools", s.apiPools)
	mux.HandleFunc("GET /grid", s.gridPage)
	mux.HandleFunc("GET /api/v1/grid", s.apiGrid)
	mux.HandleFunc("GET /builders/{name}", s.builderPage)
	mux.HandleFunc("GET /api/v1/builders/{name}", s.apiBuilder)
	mux.HandleFunc("GET /queue", s.queuePage)
	mux.HandleFunc("GET /api/v1/queue", s.apiQueue)
	mux.HandleFunc("GET /hosts", s.hostsPage)
	mux.HandleFunc("GET /api/v1/hosts", s.apiHosts)
	mux.HandleFunc("GET /summary", s.summaryPage)
	mux.HandleFunc("GET /api/v1/summary", s.apiSummary)
	return mux
}

// Patterns are the routes New serves, for a parent mux to delegate them.
// "GET /{$}" is the exact root, so the parent's other routes stay its own.
var Patterns = []string{
	"GET /{$}",
	"GET /static/",
	"GET /requests/{id}",
	"GET /pools",
	"GET /api/v1/requests",
	"GET /api/v1/requests/{id}",
	"GET /api/v1/pools",
	"GET /grid",
	"GET /api/v1/grid",
	"GET /builders/{name}",
	"GET /api/v1/builders/{name}",
	"GET /queue",
	"GET /api/v1/queue",
	"GET /hosts",
	"GET /api/v1/hosts",
	"GET /summary",
	"GET /api/v1/summary",
}

func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"ts": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		// tm is a time of day, for a request's timeline (its date is the
		// request's).
		"tm": func(t time.Time) string { return t.UTC().Format("15:04:05") },
		// lastRunner is a builder's latest attempt, the one that counts.
		"lastRunner": func(rs []runnerView) *runnerView {
			if len(rs) == 0 {
				return nil
			}
			return &rs[len(rs)-1]
		},
	}
	pages := map[string]*template.Template{}
	for _, p := range []string{"index", "request", "pools", "notfound", "error", "grid", "builder", "queue", "hosts", "summary"} {
		pages[p] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS,
			"templates/layout.html", "templates/"+p+".html"))
	}
	return pages
}

// validID reports whether id has the shape of a request id (16 lowercase
// hex digits, see trigger.requestID), checked before any query.
func validID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for _, c := range []byte(id) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// lookup loads one request view, mapping a malformed or unknown id to
// store.ErrNotFound.
func (s *server) lookup(ctx context.Context, id string) (requestView, error) {
	if !validID(id) {
		return requestView{}, store.ErrNotFound
	}
	r, err := s.st.Request(ctx, id)
	if err != nil {
		return requestView{}, err
	}
	v := s.requestView(r)
	if s.runners != nil {
		rs, err := s.runners.RunnersOfRequest(ctx, id)
		if err != nil {
			return requestView{}, err
		}
		v.attachRunners(rs)
	}
	bs, err := s.hist.BuildsOfRequest(ctx, id)
	if err != nil {
		return requestView{}, err
	}
	v.Timeline = s.timeline(bs)
	s.addHeld(ctx, &v)
	return v, nil
}

// addHeld shows the builders that have no runner yet (held back by the
// pool's max_runners) with the reason from the queue.
func (s *server) addHeld(ctx context.Context, v *requestView) {
	if s.queue == nil {
		return
	}
	has := map[string]bool{}
	for _, b := range v.Timeline {
		has[b.Pool] = true
	}
	ws, err := s.queue.Queue(ctx)
	if err != nil {
		s.log.Warn("reading the queue", "err", err)
		return
	}
	for _, w := range ws {
		if w.RequestID != v.ID || has[w.Pool] {
			continue
		}
		has[w.Pool] = true
		v.Timeline = append(v.Timeline, buildView{RequestID: v.ID, PR: v.PR, PRURL: v.PRURL, SHA: v.SHA, ShortSHA: v.ShortSHA,
			Tier: v.Tier, Actor: v.Actor, Pool: w.Pool, JobID: w.JobID, Result: resultWaiting, JobURL: w.JobURL,
			WaitReason: w.Reason, Queued: w.Since.UTC(), Created: w.Since.UTC(), Age: age(s.now().Sub(w.Since))})
	}
}

// fail answers an error: 404 for unknown requests, else 500 with nothing
// of the error shown (it is logged).
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error, api bool) {
	code, msg := http.StatusInternalServerError, "internal error"
	if errors.Is(err, store.ErrNotFound) {
		code, msg = http.StatusNotFound, "not found"
	} else {
		s.log.Error("status page", "path", r.URL.Path, "err", err)
	}
	if api {
		writeJSON(w, code, map[string]string{"error": msg})
		return
	}
	page := "error"
	if code == http.StatusNotFound {
		page = "notfound"
	}
	s.render(w, code, page, map[string]any{"Title": msg, "Path": r.URL.Path})
}
