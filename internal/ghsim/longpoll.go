package ghsim

import "context"

// wakeWhenDone wakes the long polls waiting on s.cond once ctx ends (its
// deadline passed or the client went away), so each re-checks and answers.
// The returned func stops it; long polls defer it.
func (s *Server) wakeWhenDone(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
}
