package manager

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/buildfleet/buildfleet/manager/status"
)

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
		Store: m.store, Config: m.cfg, Fleet: hostsOf{m.nomad}, Queue: m.fleet, Health: m.notify, Runner: releaseOf{m},
		Logger: m.log.With("component", "status"),
	})
	for _, p := range status.Patterns {
		mux.Handle(p, page)
	}
	return mux
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
		Help: "1 while GitHub and Nomad answer (each reached within the readiness grace period), as /readyz says.",
	}, func() float64 {
		if m.ready.github.up(m.now(), m.readyGrace()) && m.ready.nomad.up(m.now(), m.readyGrace()) {
			return 1
		}
		return 0
	})
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "buildfleet_github_up", Help: "1 while GitHub answered within the readiness grace period.",
	}, func() float64 { return boolf(m.ready.github.up(m.now(), m.readyGrace())) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "buildfleet_nomad_up", Help: "1 while Nomad answered within the readiness grace period.",
	}, func() float64 { return boolf(m.ready.nomad.up(m.now(), m.readyGrace())) })
	m.reg.MustRegister(newPoolCollector(m))
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// releaseOf shows the runner release cache on the status page.
type releaseOf struct{ m *Manager }

func (r releaseOf) RunnerRelease() status.RunnerRelease {
	if r.m.pkgs == nil {
		return status.RunnerRelease{}
	}
	s := r.m.pkgs.Status()
	return status.RunnerRelease{Mode: s.Mode, InUse: s.InUse, Latest: s.Latest, Behind: s.Behind, Warning: s.Warning, Error: s.Error}
}
