package report

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/buildfleet/buildfleet/config"
)

type metrics struct {
	writes     *prometheus.CounterVec
	perRequest prometheus.Histogram
	depth      prometheus.Gauge
	coalesced  prometheus.Counter
	failed     *prometheus.CounterVec
	outcomes   *prometheus.CounterVec
	results    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, pools []config.Pool) metrics {
	f := promauto.With(reg) // a nil registerer registers nothing
	m := metrics{
		writes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "buildfleet_report_writes_total",
			Help: "GitHub writes sent for results, by kind (status, check_create, check_update, comment_create, comment_edit).",
		}, []string{"kind"}),
		perRequest: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "buildfleet_report_writes_per_request",
			Help:    "GitHub writes a request's results took, observed when its last result is written.",
			Buckets: []float64{1, 2, 3, 5, 8, 13, 21, 34, 55},
		}),
		depth: f.NewGauge(prometheus.GaugeOpts{
			Name: "buildfleet_report_queue_depth",
			Help: "Results waiting to be written to GitHub.",
		}),
		coalesced: f.NewCounter(prometheus.CounterOpts{
			Name: "buildfleet_report_coalesced_total",
			Help: "Results replaced by a newer one of the same builder before they were written.",
		}),
		failed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "buildfleet_report_failed_writes_total",
			Help: "Result writes that failed, by outcome (retried: rate limit, 5xx, network; dropped: GitHub refused them for good).",
		}, []string{"outcome"}),
		outcomes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "buildfleet_requests_finished_total",
			Help: "Requests whose builders all have a final result, by final state (succeeded, failed, fleet_error, cancelled).",
		}, []string{"state"}),
		results: f.NewCounterVec(prometheus.CounterOpts{
			Name: "buildfleet_builder_results_total",
			Help: "Final builder results, by pool and conclusion (success, failure, fleet_error, cancelled).",
		}, []string{"pool", "conclusion"}),
	}
	// The series exist from the start: an alert sees zero, not nothing.
	outcomes := []string{OutcomeSucceeded, OutcomeFailed, OutcomeFleetError, OutcomeCancelled}
	for _, o := range outcomes {
		m.outcomes.WithLabelValues(o)
	}
	for _, p := range pools {
		for _, c := range []string{StateSuccess, StateFailure, OutcomeFleetError, OutcomeCancelled} {
			m.results.WithLabelValues(p.Name, c)
		}
	}
	return m
}
