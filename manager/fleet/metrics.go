package fleet

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/buildfleet/buildfleet/config"
)

// metrics are the fleet's histograms; a nil registerer registers nothing.
type metrics struct {
	queueWait     *prometheus.HistogramVec
	labelToRunner prometheus.Histogram
}

// waitBuckets span a runner placed at once to a refleak build's wait.
var waitBuckets = []float64{1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 21600}

func newMetrics(reg prometheus.Registerer, pools []config.Pool) metrics {
	f := promauto.With(reg)
	m := metrics{
		queueWait: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "buildfleet_queue_wait_seconds",
			Help:    "Time from a builder's job being queued to Nomad placing its runner on a host, by pool.",
			Buckets: waitBuckets,
		}, []string{"pool"}),
		labelToRunner: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "buildfleet_label_to_runner_started_seconds",
			Help:    "Time from the label being added (the request) to the builder's runner process running on a host.",
			Buckets: waitBuckets,
		}),
	}
	// Every pool's series exists from the start, so that an alert on it
	// sees zero rather than nothing.
	for _, p := range pools {
		m.queueWait.WithLabelValues(p.Name)
	}
	return m
}
