package report

import "time"

// Limit is one window of GitHub's secondary limit: at most N writes in any
// span of Per.
type Limit struct {
	N   int
	Per time.Duration
}

// DefaultLimits are GitHub's documented limits on content-creating
// requests: 80 a minute and 500 an hour, per credential.
func DefaultLimits() []Limit {
	return []Limit{{N: 80, Per: time.Minute}, {N: 500, Per: time.Hour}}
}

// pacer is a token bucket whose tokens come back exactly Per after they
// were spent: it remembers the times of the last N writes of each window,
// so no span of Per ever holds more than N writes (a plain refilling
// bucket of N tokens would allow 2N in the first Per). Idle time is saved
// up as burst, to at most N per window. Only the writer goroutine uses it.
type pacer struct {
	windows []window
}

type window struct {
	Limit
	sent []time.Time // oldest first, at most N
}

func newPacer(ls []Limit) *pacer {
	p := &pacer{}
	for _, l := range ls {
		if l.N > 0 && l.Per > 0 {
			p.windows = append(p.windows, window{Limit: l})
		}
	}
	return p
}

// wait returns how long to wait before the next write may be sent at now;
// zero means send now.
func (p *pacer) wait(now time.Time) time.Duration {
	var d time.Duration
	for i := range p.windows {
		w := &p.windows[i]
		if len(w.sent) < w.N {
			continue
		}
		if free := w.sent[len(w.sent)-w.N].Add(w.Per).Sub(now); free > d {
			d = free
		}
	}
	return d
}

// spend records a write sent at now.
func (p *pacer) spend(now time.Time) {
	for i := range p.windows {
		w := &p.windows[i]
		w.sent = append(w.sent, now)
		if len(w.sent) > w.N {
			w.sent = append(w.sent[:0], w.sent[len(w.sent)-w.N:]...)
		}
	}
}

// exhaust takes GitHub's word over our count after a secondary-limit
// answer: the shortest window counts as full from now, so writing resumes
// gently, one write at a time, as that window passes.
func (p *pacer) exhaust(now time.Time) {
	s := -1
	for i := range p.windows {
		if s < 0 || p.windows[i].Per < p.windows[s].Per {
			s = i
		}
	}
	if s < 0 {
		return
	}
	w := &p.windows[s]
	w.sent = w.sent[:0]
	for range w.N {
		w.sent = append(w.sent, now)
	}
}
