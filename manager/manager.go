// Package manager is the buildfleet daemon as a library: New builds it from
// a typed config, Run serves until its context ends. The command line
// (cmd/buildfleet) only resolves the config and wires signals; tests start
// managers in-process.
package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/fleet"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/notify"
	"github.com/buildfleet/buildfleet/manager/report"
	"github.com/buildfleet/buildfleet/manager/runnerpkg"
	"github.com/buildfleet/buildfleet/manager/scaleset"
	"github.com/buildfleet/buildfleet/manager/store"
	"github.com/buildfleet/buildfleet/manager/trigger"
	"github.com/buildfleet/buildfleet/manager/webhook"
)

// Options are everything a manager is built from. Nothing is global: two
// managers can live in one process.
type Options struct {
	// Config is the resolved, validated configuration.
	Config config.Config
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Registry collects and serves the metrics; nil means a new one.
	Registry *prometheus.Registry
	// Version is reported in logs and metrics.
	Version string
	// Listener, when set, is served instead of listening on Config.Listen.
	Listener net.Listener
	// GitHubTransport, when set, carries GitHub calls (tests, proxies).
	GitHubTransport http.RoundTripper
	// ShutdownTimeout bounds the graceful stop (default 10s).
	ShutdownTimeout time.Duration
	// RetryEvery is how often unfinished work is retried (default 5s).
	RetryEvery time.Duration
	// RecoverEvery is how often lost label events are looked for (default
	// 5m; negative disables).
	RecoverEvery time.Duration
	// RecoverMinAge is how old a label must be before that scan builds it
	// (default 2m): a younger one is left to its webhook, likely on its
	// way. The proof suite shortens it so a dropped labeled webhook is
	// recovered within seconds.
	RecoverMinAge time.Duration
	// WaitingAfter is how long a runner may wait for a host before its
	// job says "waiting for a host" (default 2m).
	WaitingAfter time.Duration
	// ReconcileEvery is how long after the last webhook of a run in flight
	// its jobs are compared with GitHub's (default 1m); tests shorten it.
	ReconcileEvery time.Duration
	// ReadyGrace is how long GitHub or Nomad may go without answering
	// before /readyz says it is down (default 90s); ProbeEvery is how
	// often Nomad is asked (default 15s).
	ReadyGrace, ProbeEvery time.Duration
	// WriteLimits are the credential's write budget: every
	// content-creating GitHub call (label removals, dispatches, JIT
	// configs, runner removals, statuses, check runs, comments) waits for
	// it (default GitHub's 80 a minute and 500 an hour); tests shorten them.
	WriteLimits []github.Limit
}

// Manager is a configured daemon.
type Manager struct {
	cfg    config.Config
	log    *slog.Logger
	reg    *prometheus.Registry
	opts   Options
	store  *store.Store
	gh     *github.Client
	nomad  *nomad.Client
	hook   *webhook.Handler
	trig   *trigger.Trigger
	fleet  *fleet.Fleet
	sets   *scaleset.Source // nil when no pool has source scaleset
	report *report.Reporter
	notify *notify.Tracker
	pkgs   *runnerpkg.Cache
	ln     net.Listener
	srv    *http.Server
	ready  readiness
	outage *storeOutage
	stops  []stopFunc
	once   sync.Once
}

type stopFunc struct {
	name string
	fn   func(context.Context) error
}

// New builds a manager: it opens the store and the API clients and binds
// the listener, so that a config mistake fails here, before Run.
func New(o Options) (_ *Manager, err error) {
	if err := o.Config.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	// m is not the named result: a failing return sets that to nil, and
	// what was built so far must still be torn down.
	m := &Manager{cfg: o.Config, log: o.Logger, reg: o.Registry, opts: o, outage: newStoreOutage()}
	defer func() {
		if err != nil {
			_ = m.stop()
		}
	}()

	st, err := store.Open(context.Background(), o.Config.Store.Path)
	if err != nil {
		return nil, err
	}
	m.store = st
	m.onStop("store", func(context.Context) error { return st.Close() })

	ghBase := o.GitHubTransport
	if ghBase == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = github.AttemptTimeout
		ghBase = t
	}
	ghBase = answerTransport{next: ghBase, dep: &m.ready.github}
	// One write budget for the credential, kept in the store so that a
	// restart in a burst does not spend again what GitHub still counts.
	budget := github.NewBudget(github.BudgetOptions{Limits: o.WriteLimits, Journal: st})
	if m.gh, err = github.New(o.Config.GitHub, github.Options{Transport: ghBase, Registerer: o.Registry, Budget: budget}); err != nil {
		return nil, err
	}
	if m.nomad, err = nomad.New(o.Config.Nomad); err != nil {
		return nil, err
	}
	m.nomad.SetLogger(m.log.With("component", "nomad"))
	m.nomad.RegisterMetrics(o.Registry)
	m.registerMetrics()

	m.trig = trigger.New(trigger.Options{
		Config: o.Config, Store: st, GitHub: m.gh, Registerer: o.Registry,
		Logger:     m.log.With("component", "trigger"),
		RetryEvery: o.RetryEvery, RecoverEvery: o.RecoverEvery,
		RecoverMinAge: o.RecoverMinAge,
		OnDispatched:  func() { m.fleet.Wake() },
		ExpectWrites:  func(n int) { budget.Expect("trigger", n) },
	})
	// One report queue per GitHub credential: GitHub's secondary limit
	// counts per token or installation; its writes go through the
	// credential's budget with the lower priority.
	m.report = report.New(report.Options{
		Config: o.Config, Store: st, GitHub: m.gh, Registerer: o.Registry,
		Logger: m.log.With("component", "report"), OnFinished: m.finishRequest,
	})
	// Host health: the fleet tells it of runners that failed on a host;
	// it takes failing hosts out of scheduling and tells their owners.
	m.notify = notify.New(notify.Options{
		Config: o.Config.Notify, Nodes: m.nomad, Store: st, Senders: notify.Senders(o.Config.Notify),
		Logger: m.log.With("component", "notify"), Registerer: o.Registry,
	})
	// Which runner archive runners download: GitHub's current release,
	// asked about hourly (see runnerpkg).
	m.pkgs = runnerpkg.New(runnerpkg.Options{
		Config: o.Config, GitHub: m.gh, KV: st, Registerer: o.Registry,
		Logger: m.log.With("component", "runnerpkg"),
	})
	// The fleet starts runners for the jobs of dispatched runs and reports
	// their results; it reads workflow_job and workflow_run deliveries, the
	// trigger pull_request ones.
	act, err := loadActRunner(o.Config)
	if err != nil {
		return nil, err
	}
	fo := fleet.Options{
		Config: o.Config, Store: st, GitHub: m.gh, Nomad: m.nomad, Reporter: m.report, Packages: m.pkgs, ActRunner: act,
		Logger: m.log.With("component", "fleet"), RetryEvery: o.RetryEvery, Health: m.notify, Registerer: o.Registry,
		WaitingAfter: o.WaitingAfter, Jobs: m.gh, Pools: m.nomad, ReconcileEvery: o.ReconcileEvery,
		ExpectWrites: func(n int) { budget.Expect("fleet", n) },
	}
	if m.sets, err = m.scaleSets(); err != nil {
		return nil, err
	}
	if m.sets != nil {
		fo.ScaleSets = m.sets
	}
	m.fleet = fleet.New(fo)
	m.hook, err = webhook.New(webhook.Options{
		Secret:     []byte(o.Config.GitHub.WebhookSecret.Reveal()),
		Sink:       st,
		Events:     []string{"pull_request", "workflow_job", "workflow_run"},
		Notify:     func() { m.trig.Wake(); m.fleet.Wake() },
		Logger:     m.log.With("component", "webhook"),
		Registerer: o.Registry,
		OnStore:    m.storeResult,
	})
	if err != nil {
		return nil, err
	}

	m.ln = o.Listener
	if m.ln == nil {
		if m.ln, err = net.Listen("tcp", o.Config.Listen); err != nil {
			return nil, fmt.Errorf("listen (config key listen, %s): %w", o.Config.Listen, err)
		}
	}
	m.srv = &http.Server{
		Handler:           m.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
	}
	ln := m.ln
	m.onStop("listener", func(context.Context) error {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	})
	return m, nil
}

// Addr is the address the manager serves on.
func (m *Manager) Addr() net.Addr { return m.ln.Addr() }

// onStop registers a teardown; they run last-in-first-out.
func (m *Manager) onStop(name string, fn func(context.Context) error) {
	m.stops = append(m.stops, stopFunc{name, fn})
}

// Run serves until ctx ends, then stops everything in reverse order of
// start, HTTP first, within the shutdown timeout. It returns nil on a clean
// stop.
func (m *Manager) Run(ctx context.Context) error {
	m.log.Info("buildfleet manager starting", "version", m.opts.Version, "listen", m.ln.Addr().String(),
		"repositories", len(m.cfg.Repositories), "pools", len(m.cfg.Pools))
	bg, cancelBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	loops := []func(context.Context){m.probe, m.maintain, m.watchStore, m.hook.Run, m.trig.Run, m.fleet.Run, m.report.Run, m.notify.Run, m.pkgs.Run}
	if m.sets != nil {
		// Its listeners delete their sessions as the background stops.
		loops = append(loops, m.sets.Run)
	}
	for _, loop := range loops {
		wg.Add(1)
		go func() { defer wg.Done(); loop(bg) }()
	}
	m.onStop("background", func(context.Context) error { cancelBG(); wg.Wait(); return nil })

	srvErr := make(chan error, 1)
	go func() { srvErr <- m.srv.Serve(m.ln) }()
	m.onStop("http", m.srv.Shutdown)

	var err error
	select {
	case <-ctx.Done():
		m.log.Info("buildfleet manager stopping", "reason", context.Cause(ctx))
	case err = <-srvErr:
		m.log.Error("http server failed", "err", err)
		err = fmt.Errorf("http server: %w", err)
	}
	if serr := m.stop(); serr != nil && err == nil {
		err = serr
	}
	m.log.Info("buildfleet manager stopped")
	return err
}

// stop runs the teardowns once, last first, within the shutdown timeout.
func (m *Manager) stop() error {
	var errs []error
	m.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), m.opts.ShutdownTimeout)
		defer cancel()
		for i := len(m.stops) - 1; i >= 0; i-- {
			s := m.stops[i]
			if err := s.fn(ctx); err != nil {
				errs = append(errs, fmt.Errorf("stopping %s: %w", s.name, err))
			}
		}
	})
	return errors.Join(errs...)
}
