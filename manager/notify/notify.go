// Package notify keeps an eye on the donated hosts and tells their owners
// when something needs them: a host missing for longer than a threshold,
// or a host taken out of scheduling after repeated infrastructure failures
// of its runners (never started, lost, never took its job).
//
// Each host (a Nomad client node) is, as the tracker sees it:
//
//	ready ──down/disconnected/gone──▶ missing ──longer than missing_after──▶ notice "missing" (once)
//	  ▲                                  │ back ready
//	  └──────────────────────────────────┘
//	ready ──max_failures in a row within failure_window──▶ made ineligible by buildfleet, notice "ineligible"
//	  ▲                                                       │ the owner re-enables it (nomad node eligibility -enable)
//	  └───────────────────────────────────────────────────────┘ (failures before that no longer count)
//
// A host in planned downtime (node meta buildfleet_downtime, an RFC 3339
// interval "start/end") raises no alarm: no missing notice, no
// ineligibility. A host its owner drained or made ineligible is paused,
// not missing.
//
// Notices are stored first (one row per channel: e-mail to the contact in
// the node meta, and/or the operator's JSON webhook), then sent with
// retries by Run; the hosts page shows what was sent.
package notify

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/store"
)

// Node meta keys a donor sets (see buildfleet donor config); the config
// package owns them.
const (
	MetaOwner     = config.MetaOwner
	MetaContact   = config.MetaContact
	MetaPlatform  = config.MetaPlatform
	MetaTiers     = config.MetaTiers
	MetaIsolation = config.MetaIsolation
	// MetaDowntime is a planned downtime, "2026-12-01T08:00:00Z/2026-12-01T12:00:00Z".
	MetaDowntime = "buildfleet_downtime"
)

// Kinds of infrastructure failure, and of notice.
const (
	FailureNeverStarted = "never_started"
	FailureLost         = "lost"
	FailureNotTaken     = "not_taken"

	NoticeIneligible = "ineligible"
	NoticeMissing    = "missing"
)

// Nodes is what the tracker needs from Nomad.
type Nodes interface {
	Nodes(ctx context.Context) ([]nomad.Node, error)
	SetEligibility(ctx context.Context, nodeID string, eligible bool) error
}

var _ Nodes = (*nomad.Client)(nil)

// Options configure a Tracker.
type Options struct {
	Config config.Notify
	Nodes  Nodes
	Store  *store.Store
	// Senders deliver notices; none means notices are recorded as failed
	// with "no channel configured".
	Senders    []Sender
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Every is how often the nodes are looked at and unsent notices
	// retried (default 30s).
	Every time.Duration
	// MaxTries bounds the tries of one notice (default 5).
	MaxTries int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Tracker follows the hosts' health.
type Tracker struct {
	o   Options
	log *slog.Logger
	st  *store.Store
	m   metrics

	mu sync.Mutex
	// hosts is the last look at the nodes, by name.
	hosts map[string]*hostState
	// polled is when the nodes were last listed (zero: never).
	polled time.Time
	wake   chan struct{}
}

// hostState is what the tracker remembers of one node between looks.
type hostState struct {
	node nomad.Node
	// lastSeen is the last look that found the node ready: Nomad marks a
	// node down when its heartbeats stop, so this is the last heartbeat
	// within Nomad's heartbeat grace.
	lastSeen time.Time
	// missingSince is when a look first found it not ready (or gone).
	missingSince time.Time
	gone         bool
}

// New builds a Tracker.
func New(o Options) *Tracker {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Every <= 0 {
		o.Every = 30 * time.Second
	}
	if o.MaxTries <= 0 {
		o.MaxTries = 5
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &o.Config
	if c.MissingAfter <= 0 {
		c.MissingAfter = config.Duration(15 * time.Minute)
	}
	if c.MaxFailures <= 0 {
		c.MaxFailures = 3
	}
	if c.FailureWindow <= 0 {
		c.FailureWindow = config.Duration(time.Hour)
	}
	m := newMetrics(o.Registerer)
	for _, k := range []string{FailureNeverStarted, FailureLost, FailureNotTaken} {
		m.failures.WithLabelValues(k)
	}
	for _, s := range o.Senders {
		for _, k := range []string{NoticeMissing, NoticeIneligible} {
			m.notices.WithLabelValues(k, s.Channel(), "sent")
		}
	}
	return &Tracker{o: o, log: o.Logger, st: o.Store, m: m, hosts: map[string]*hostState{},
		wake: make(chan struct{}, 1)}
}

// Run looks at the nodes and sends the pending notices every Every, and
// when woken (a host was just made ineligible), until ctx ends.
func (t *Tracker) Run(ctx context.Context) {
	tick := time.NewTicker(t.o.Every)
	defer tick.Stop()
	for {
		t.Poll(ctx)
		t.SendPending(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-t.wake:
		}
	}
}

func (t *Tracker) wakeUp() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

type metrics struct {
	notices  *prometheus.CounterVec
	failures *prometheus.CounterVec
	disabled prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) metrics {
	f := promauto.With(reg)
	return metrics{
		notices: f.NewCounterVec(prometheus.CounterOpts{
			Name: "buildfleet_notices_total",
			Help: "Notices to host owners, by kind (missing, ineligible), channel (email, webhook) and outcome (sent, retried, failed).",
		}, []string{"kind", "channel", "outcome"}),
		failures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "buildfleet_host_failures_total",
			Help: "Infrastructure failures of runners on hosts, by kind (never_started, lost, not_taken).",
		}, []string{"kind"}),
		disabled: f.NewCounter(prometheus.CounterOpts{
			Name: "buildfleet_hosts_disabled_total",
			Help: "Hosts taken out of scheduling after repeated infrastructure failures.",
		}),
	}
}
