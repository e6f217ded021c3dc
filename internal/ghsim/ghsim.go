// Package ghsim is a stateful GitHub simulator for buildfleet's demo and
// end-to-end tests: a subset of the REST API at api.github.com's paths, status
// codes and shapes; signed webhooks in GitHub's payload shapes; workflow
// dispatch that expands workflow YAML into runs and jobs; a just-in-time
// runner protocol for a stand-in runner; a control API for scripting users;
// and fault injection. Where it differs from GitHub, tests built on it lie,
// so its shapes are tested against GitHub's published OpenAPI description and
// webhook examples.
package ghsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. The zero value works: any non-empty token is
// accepted, and jobs are run by whatever runner claims them.
type Options struct {
	// BaseURL is the URL under which clients reach the server; it appears in
	// every url/html_url field and in JIT configs. Start sets it when empty.
	BaseURL string
	// Tokens maps accepted API tokens to the login they act as. When empty,
	// any non-empty token is accepted and acts as DefaultLogin.
	Tokens map[string]string
	// DefaultLogin is the acting user for tokens not in Tokens
	// (default "buildfleet-bot").
	DefaultLogin string
	// RateLimit is the primary rate limit per token and hour (default 5000).
	RateLimit int
	// SecondaryLimits, when set, enforce GitHub's secondary limit on
	// content-creating requests (POST, PATCH, PUT, DELETE) per token: a
	// request that would make more than N in any span of Per is answered
	// 403 "secondary rate limit" with Retry-After (GitHub: 80 a minute,
	// 500 an hour; tests scale them down).
	SecondaryLimits []SecondaryLimit
	// AppID, when set, enables App installation tokens:
	// POST /app/installations/{id}/access_tokens with an RS256 JWT whose iss
	// is AppID issues a token; check runs can then only be written with
	// such a token, as on GitHub.
	AppID int64
	// MaxDispatchInputs caps workflow_dispatch inputs (default 25, as in
	// GitHub's OpenAPI description; older GitHub allowed 10).
	MaxDispatchInputs int
	// LegacyDispatch emulates GHES <= 3.20, which rejects the
	// return_run_details field of a workflow dispatch with 400.
	LegacyDispatch bool
	// InstallationID, when non-zero, makes webhook payloads carry an
	// "installation" object, as App webhooks do.
	InstallationID int64
	// JobDuration and JobConclusion, when set, make runners simulate every
	// job (sleep, then report the conclusion) instead of executing steps.
	// Per job, the env vars GHSIM_DURATION and GHSIM_CONCLUSION do the same.
	JobDuration   time.Duration
	JobConclusion string
	// WebhookTimeout bounds one delivery (default 10s, like github.com).
	WebhookTimeout time.Duration
	// Logger receives the server's logs (default: discard).
	Logger *slog.Logger
	// RunnerCommand is the stand-in runner (a ghsim binary) that the
	// runner packages of runners/downloads start; empty makes their run.sh
	// fail. MinRunnerVersion, when set, refuses older runners at session
	// start (see SetMinRunnerVersion).
	RunnerCommand    string
	MinRunnerVersion string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// RunnerLostAfter is how long a runner that took a JIT config may stay
	// silent (no call, no long poll open) before it shows offline and the
	// job it runs fails with "lost communication with the server", as on
	// GitHub (default 10m).
	RunnerLostAfter time.Duration
}

// Server is one simulated GitHub. All state lives in memory.
type Server struct {
	opts   Options
	log    *slog.Logger
	mux    *http.ServeMux
	faults *faults

	mu    sync.Mutex
	cond  *sync.Cond // signalled when jobs become queued or state changes
	st    *state
	base  string
	calls []Call

	httpSrv *http.Server
	lis     net.Listener
	hooksWG sync.WaitGroup
	closed  chan struct{}
	once    sync.Once
	keys    *keyPool // runner keys made ahead (runnerkeys.go)
}

// New returns a Server with empty state.
func New(opts Options) *Server {
	if opts.DefaultLogin == "" {
		opts.DefaultLogin = "buildfleet-bot"
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = 5000
	}
	if opts.MaxDispatchInputs == 0 {
		opts.MaxDispatchInputs = 25
	}
	if opts.WebhookTimeout == 0 {
		opts.WebhookTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RunnerLostAfter <= 0 {
		opts.RunnerLostAfter = defaultRunnerLostAfter
	}
	s := &Server{
		opts:   opts,
		log:    opts.Logger.With("component", "ghsim"),
		mux:    http.NewServeMux(),
		faults: newFaults(),
		st:     newState(),
		base:   strings.TrimRight(opts.BaseURL, "/"),
		closed: make(chan struct{}),
	}
	s.cond = sync.NewCond(&s.mu)
	s.keys = newKeyPool(s.closed)
	s.st.pkgs.minVersion = opts.MinRunnerVersion
	s.routes()
	return s
}

// Handler returns the HTTP handler serving the REST API, the control API,
// the runner protocol and the log pages.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// SetBaseURL sets the URL clients reach the server at, for servers started
// with httptest around Handler.
func (s *Server) SetBaseURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.base = strings.TrimRight(u, "/")
}

// URL returns the base URL.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background.
// It returns the base URL.
func (s *Server) Start(addr string) (string, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listening on %s: %w", addr, err)
	}
	s.lis = lis
	s.mu.Lock()
	if s.base == "" {
		s.base = "http://" + lis.Addr().String()
	}
	base := s.base
	s.mu.Unlock()
	s.httpSrv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.hooksWG.Add(1)
	go func() { defer s.hooksWG.Done(); s.watchSilence() }()
	go func() {
		if err := s.httpSrv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serving", "err", err)
		}
	}()
	return base, nil
}

// Close stops the HTTP server, wakes long-polling runners and waits for the
// webhook queues to stop. It is idempotent.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		s.mu.Lock()
		s.cond.Broadcast()
		for _, h := range s.st.hooks {
			h.q.close()
		}
		s.mu.Unlock()
		if s.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = s.httpSrv.Shutdown(ctx)
		}
		s.hooksWG.Wait()
	})
	return err
}

func (s *Server) now() time.Time { return s.opts.Now().UTC().Truncate(time.Second) }
