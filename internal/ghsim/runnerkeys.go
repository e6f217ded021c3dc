package ghsim

import (
	"crypto/rsa"
	"sync"
	"time"
)

// keyPool hands out runner keys made ahead of time. A 2048-bit RSA key
// takes 50–300 ms of CPU; GitHub makes it on its own servers, but ghsim
// shares the machine with the Nomad agent and the manager under test, so a
// key made inside the JIT config answer charged the label → runner path
// (and the donor's CPU) with work GitHub's caller never pays for. The pool
// keeps a few keys ready and makes new ones only after JIT configs have
// been quiet for a moment, off the path of the runner that was just
// configured; when it is empty (a burst) a key is made on the spot, as
// before.
type keyPool struct {
	ready  chan *rsa.PrivateKey
	kick   chan struct{}
	closed <-chan struct{}
	quiet  time.Duration
	start  sync.Once

	mu       sync.Mutex
	lastTake time.Time
}

// keyPoolSize is how many keys wait ready: enough for a request's
// builders to be configured without making one.
const keyPoolSize = 4

func newKeyPool(closed <-chan struct{}) *keyPool {
	return &keyPool{
		ready:  make(chan *rsa.PrivateKey, keyPoolSize),
		kick:   make(chan struct{}, 1),
		closed: closed,
		quiet:  250 * time.Millisecond,
	}
}

// take returns a ready key, or makes one when none is ready. The first
// call starts the refill: a simulator that never issues a JIT config
// never spends CPU on keys.
func (p *keyPool) take() (*rsa.PrivateKey, error) {
	p.start.Do(func() { go p.refill() })
	p.mu.Lock()
	p.lastTake = time.Now()
	p.mu.Unlock()
	defer func() {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}()
	select {
	case k := <-p.ready:
		return k, nil
	default:
		return newRunnerKey()
	}
}

// refill tops the pool up, one key at a time, each only once no key was
// taken for p.quiet.
func (p *keyPool) refill() {
	for {
		select {
		case <-p.closed:
			return
		case <-p.kick:
		}
		for len(p.ready) < cap(p.ready) {
			p.mu.Lock()
			wait := p.quiet - time.Since(p.lastTake)
			p.mu.Unlock()
			if wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-p.closed:
					t.Stop()
					return
				case <-t.C:
				}
				continue
			}
			k, err := newRunnerKey()
			if err != nil {
				break // take makes its own; the next take kicks again
			}
			select {
			case p.ready <- k:
			case <-p.closed:
				return
			}
		}
	}
}
