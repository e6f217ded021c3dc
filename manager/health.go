package manager

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/status"
)

// readiness records whether each dependency was reached at least once.
type readiness struct {
	github atomic.Bool
	nomad  atomic.Bool
	// nomadTLS is the last TLS failure reaching Nomad, shown by /readyz:
	// a certificate problem does not fix itself, unlike a server that is
	// not up yet, and "not reached yet" would hide it.
	nomadTLS atomic.Pointer[string]
}

func (m *Manager) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", m.readyz)
	mux.Handle("/webhook", m.hook)
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	// The status page: "GET /{$}" is the exact root, so unknown paths stay
	// the mux's 404 and /webhook keeps every method.
	page := status.New(status.Options{
		Store: m.store, Config: m.cfg, Fleet: hostsOf{m.nomad}, Queue: m.fleet, Health: m.notify,
		Logger: m.log.With("component", "status"),
	})
	for _, p := range status.Patterns {
		mux.Handle(p, page)
	}
	return mux
}

// readyz answers 200 only once the store answers and both GitHub and Nomad
// were reached at least once.
func (m *Manager) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"store": "ok", "github": "ok", "nomad": "ok"}
	ok := true
	if err := m.store.Ping(ctx); err != nil {
		checks["store"], ok = "unavailable", false
	}
	if !m.ready.github.Load() {
		checks["github"], ok = "not reached yet", false
	}
	if !m.ready.nomad.Load() {
		checks["nomad"], ok = "not reached yet", false
		if why := m.ready.nomadTLS.Load(); why != nil {
			checks["nomad"] = *why
		}
	}
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, checks)
}

// probe reaches GitHub and Nomad until each answered once, backing off from
// 500ms to 30s between tries.
//
//	start ──▶ try both ──▶ all reached? ──yes──▶ done
//	             ▲               │no
//	             └── wait(backoff×2, ≤30s)
func (m *Manager) probe(ctx context.Context) {
	wait := 500 * time.Millisecond
	for {
		if !m.ready.github.Load() {
			if err := m.gh.Ping(ctx); err != nil {
				m.log.Warn("github not reachable yet", "err", err)
			} else {
				m.ready.github.Store(true)
				m.log.Info("github reached")
			}
		}
		if !m.ready.nomad.Load() {
			if err := m.nomad.Ping(ctx); err != nil {
				m.log.Warn("nomad not reachable yet", "err", err)
				if errors.Is(err, nomad.ErrTLS) {
					msg := err.Error()
					m.ready.nomadTLS.Store(&msg)
				} else {
					m.ready.nomadTLS.Store(nil)
				}
			} else {
				m.ready.nomad.Store(true)
				m.log.Info("nomad reached")
			}
		}
		if m.ready.github.Load() && m.ready.nomad.Load() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func (m *Manager) registerMetrics() {
	f := promauto.With(m.reg)
	f.NewGauge(prometheus.GaugeOpts{
		Name:        "buildfleet_build_info",
		Help:        "Always 1; the version label says which buildfleet runs.",
		ConstLabels: prometheus.Labels{"version": m.opts.Version},
	}).Set(1)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "buildfleet_ready",
		Help: "1 once the store is open and GitHub and Nomad were reached.",
	}, func() float64 {
		if m.ready.github.Load() && m.ready.nomad.Load() {
			return 1
		}
		return 0
	})
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
