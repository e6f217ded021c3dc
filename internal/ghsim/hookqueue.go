package ghsim

import (
	"sync"
	"time"
)

// hookQueue is an unbounded FIFO of deliveries for one hook, so emitting
// never blocks on a slow receiver and order per hook is kept.
type hookQueue struct {
	mu     sync.Mutex
	items  []queued
	closed bool
	wake   chan struct{}
}

type queued struct {
	d    *delivery
	hold bool // deliver after the next item (out-of-order fault)
}

func newHookQueue() *hookQueue { return &hookQueue{wake: make(chan struct{}, 1)} }

func (q *hookQueue) push(d *delivery, hold bool) {
	q.mu.Lock()
	q.items = append(q.items, queued{d: d, hold: hold})
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *hookQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop returns the next item, waiting up to wait (forever when 0). It reports
// false when the queue is closed, or when wait ran out.
func (q *hookQueue) pop(wait time.Duration) (queued, bool) {
	var timeout <-chan time.Time
	if wait > 0 {
		timeout = time.After(wait)
	}
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return queued{}, false
		}
		if len(q.items) > 0 {
			it := q.items[0]
			q.items = q.items[1:]
			q.mu.Unlock()
			return it, true
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-timeout:
			return queued{}, false
		}
	}
}
