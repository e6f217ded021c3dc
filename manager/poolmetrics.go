package manager

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/buildfleet/buildfleet/manager/fleet"
)

// poolCollector reports each pool's runners and hosts when scraped: the
// store counts runners (an index of the states in flight), Nomad the
// hosts (its client caches node details for 15 s). A Nomad that does not
// answer leaves the host gauges out rather than holding the scrape.
type poolCollector struct {
	m                                  *Manager
	pending, running, ready, hostTotal *prometheus.Desc
}

func newPoolCollector(m *Manager) *poolCollector {
	l := []string{"pool"}
	return &poolCollector{m: m,
		pending:   prometheus.NewDesc("buildfleet_pool_pending_runners", "Runners of the pool being started or waiting for a host.", l, nil),
		running:   prometheus.NewDesc("buildfleet_pool_running_runners", "Runners of the pool running a job.", l, nil),
		ready:     prometheus.NewDesc("buildfleet_pool_hosts_ready", "Hosts on which Nomad could place the pool's runner now (node pool, ready, eligible, driver healthy, constraints).", l, nil),
		hostTotal: prometheus.NewDesc("buildfleet_pool_hosts", "Hosts of the pool known to Nomad, in any state.", l, nil),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.running
	ch <- c.ready
	ch <- c.hostTotal
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	hostsOK := true
	for _, p := range c.m.cfg.Pools {
		if n, err := c.m.store.ActiveRunners(ctx, p.Name, fleet.StateStarting, fleet.StateDispatched); err == nil {
			ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(n), p.Name)
		}
		if n, err := c.m.store.ActiveRunners(ctx, p.Name, fleet.StateRunning); err == nil {
			ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(n), p.Name)
		}
		if !hostsOK {
			continue
		}
		hs, err := c.m.nomad.PoolHosts(ctx, p)
		if err != nil {
			hostsOK = false // one timeout for the scrape, not one per pool
			continue
		}
		ready := 0
		for _, h := range hs {
			if h.Placeable {
				ready++
			}
		}
		ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, float64(ready), p.Name)
		ch <- prometheus.MustNewConstMetric(c.hostTotal, prometheus.GaugeValue, float64(len(hs)), p.Name)
	}
}
