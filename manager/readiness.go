package manager

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/buildfleet/buildfleet/manager/nomad"
)

// readiness is when each dependency last answered. /readyz is 200 while
// each answered within the grace period: it reflects what is reachable
// now, not what was reached once.
type readiness struct {
	github, nomad dependency
}

// dependency is one outside system's last answer.
type dependency struct {
	ok atomic.Int64 // unix nanoseconds of the last answer; 0: never
	// why is a failure that does not fix itself (a TLS problem), shown
	// instead of "not reached yet" or "unreachable".
	why atomic.Pointer[string]
}

func (d *dependency) answered(at time.Time) {
	if n := at.UnixNano(); n > d.ok.Load() {
		d.ok.Store(n)
	}
}

func (d *dependency) last() time.Time {
	if n := d.ok.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

func (d *dependency) up(now time.Time, grace time.Duration) bool {
	l := d.last()
	return !l.IsZero() && now.Sub(l) <= grace
}

// state says "ok", "not reached yet" or since when it has not answered.
func (d *dependency) state(now time.Time, grace time.Duration) string {
	l := d.last()
	if !l.IsZero() && now.Sub(l) <= grace {
		return "ok"
	}
	if why := d.why.Load(); why != nil {
		return *why
	}
	if l.IsZero() {
		return "not reached yet"
	}
	return fmt.Sprintf("unreachable: no answer since %s", l.UTC().Format(time.RFC3339))
}

func (m *Manager) now() time.Time { return time.Now() }

func (m *Manager) readyGrace() time.Duration {
	if m.opts.ReadyGrace > 0 {
		return m.opts.ReadyGrace
	}
	return 90 * time.Second
}

func (m *Manager) probeEvery() time.Duration {
	if m.opts.ProbeEvery > 0 {
		return m.opts.ProbeEvery
	}
	return 15 * time.Second
}

// githubIdle is how long GitHub may go without an answer before the probe
// asks it: while the manager's own calls get answers, it costs none of
// the rate limit.
func (m *Manager) githubIdle() time.Duration { return max(m.probeEvery(), m.readyGrace()/2) }

// readyz answers 200 while the store answers and GitHub and Nomad each
// answered within the grace period, else 503 naming the part that is down.
func (m *Manager) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	now, grace := m.now(), m.readyGrace()
	checks := map[string]string{"store": "ok", "github": m.ready.github.state(now, grace),
		"nomad": m.ready.nomad.state(now, grace)}
	// A write, not a ping: a read-only file or a full disk still answers
	// reads while every delivery gets 503.
	err := m.store.Writable(ctx)
	if err != nil {
		checks["store"] = "cannot write"
	}
	if ctx.Err() == nil {
		m.storeResult(err)
	}
	code := http.StatusOK
	for _, v := range checks {
		if v != "ok" {
			code = http.StatusServiceUnavailable
		}
	}
	writeJSON(w, code, checks)
}

// probe keeps the readiness current: Nomad is asked every ProbeEvery;
// GitHub only when none of the manager's own calls got an answer for a
// while. Until both answered once it tries more often, backing off from
// 500ms.
//
//	start ──▶ ask whoever is due ──▶ wait (backoff ≤ ProbeEvery until both answered; then ProbeEvery) ──┐
//	             ▲──────────────────────────────────────────────────────────────────────────────────────┘
func (m *Manager) probe(ctx context.Context) {
	wait := 500 * time.Millisecond
	for {
		now := m.now()
		// Nomad's answers to the manager's own calls count too.
		if la := m.nomad.LastAnswer(); !la.IsZero() {
			m.ready.nomad.answered(la)
		}
		if l := m.ready.github.last(); l.IsZero() || now.Sub(l) >= m.githubIdle() {
			if err := m.gh.Ping(ctx); err != nil {
				m.log.Warn("github not reachable", "err", err)
			} else {
				m.ready.github.answered(m.now())
			}
		}
		if l := m.ready.nomad.last(); l.IsZero() || now.Sub(l) >= m.probeEvery() {
			if err := m.nomad.Ping(ctx); err != nil {
				m.log.Warn("nomad not reachable", "err", err)
				if errors.Is(err, nomad.ErrTLS) {
					msg := err.Error()
					m.ready.nomad.why.Store(&msg)
				} else {
					m.ready.nomad.why.Store(nil)
				}
			} else {
				m.ready.nomad.why.Store(nil)
				m.ready.nomad.answered(m.now())
			}
		}
		if !m.ready.github.last().IsZero() && !m.ready.nomad.last().IsZero() {
			wait = m.probeEvery()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, m.probeEvery())
	}
}

// answerTransport records that GitHub answered (anything but a 5xx or a
// refused credential) on each of the manager's own calls.
type answerTransport struct {
	next http.RoundTripper
	dep  *dependency
}

func (t answerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err == nil && resp.StatusCode < 500 && resp.StatusCode != http.StatusUnauthorized {
		t.dep.answered(time.Now())
	}
	return resp, err
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
