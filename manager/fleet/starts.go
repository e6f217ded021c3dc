package fleet

import (
	"context"
	"sync"

	"github.com/buildfleet/buildfleet/manager/store"
)

// starts are the runner starts in flight. A start waits on GitHub's write
// budget for its JIT config; in a burst that is up to a window. A pass
// does not wait for them: the fleet's other work (other jobs' events,
// results, other pools' starts) goes on while they wait. A start's own
// job and run keep their order: their later deliveries wait for a pass
// after the start ended.
type starts struct {
	mu         sync.Mutex
	deliveries map[string]bool
	jobs       map[int64]bool
	runs       map[int64]int
	wg         sync.WaitGroup
	// sem bounds the starts in flight; a start that finds no room is left
	// for the pass after one ends (each end wakes the loop).
	sem chan struct{}
}

func newStarts() *starts {
	return &starts{deliveries: map[string]bool{}, jobs: map[int64]bool{}, runs: map[int64]int{},
		sem: make(chan struct{}, maxParallelStarts)}
}

// busy reports whether a delivery, a job or a run has a start in flight.
func (s *starts) busy(delivery string, job, run int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deliveries[delivery] || (job != 0 && s.jobs[job]) || (run != 0 && s.runs[run] > 0)
}

// goStart handles a job's first queued delivery in its own goroutine, if
// a slot is free; it reports whether it did.
func (f *Fleet) goStart(ctx context.Context, d store.Delivery, job, run int64) bool {
	s := f.starts
	select {
	case s.sem <- struct{}{}:
	default:
		return false
	}
	s.mu.Lock()
	s.deliveries[d.ID] = true
	s.jobs[job] = true
	s.runs[run]++
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer func() {
			s.mu.Lock()
			delete(s.deliveries, d.ID)
			delete(s.jobs, job)
			if s.runs[run]--; s.runs[run] <= 0 {
				delete(s.runs, run)
			}
			s.mu.Unlock()
			<-s.sem
			s.wg.Done()
			f.Wake() // what waited on this start goes on
		}()
		f.handle(ctx, d)
	}()
	return true
}

// waitStarts waits for the starts in flight to end.
func (f *Fleet) waitStarts() { f.starts.wg.Wait() }
