package store

import (
	"context"
	"database/sql"
)

// The store's writes take turns in the process before they reach SQLite.
// SQLite lets one connection write at a time; a connection that finds the
// file locked waits in its busy handler, which sleeps 1, 2, 5, 10, 15,
// 20, 25 ms… between looks instead of waking when the lock is free. With
// the webhook intake, the trigger, the fleet, the reporter and the write
// budget's journal all writing on their own connections, those sleeps were
// the tail of webhook → Nomad dispatch (p90 33 ms, p99 65 ms over 120
// labels, most of it waiting on a lock freed long before). Waiting here
// instead hands the turn over as soon as the previous write commits.
// Another process on the same file (`buildfleet trigger`) still meets
// SQLite's own lock and busy timeout.

// newWriteTurn is the turn token: a channel of one, so a wait for it ends
// with the caller's context.
func newWriteTurn() chan struct{} { return make(chan struct{}, 1) }

// takeTurn waits for the store's write turn; release it with giveTurn.
func (s *Store) takeTurn(ctx context.Context) error {
	select {
	case s.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) giveTurn() { <-s.turn }

// exec runs one writing statement in the store's write turn.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if err := s.takeTurn(ctx); err != nil {
		return nil, err
	}
	defer s.giveTurn()
	return s.db.ExecContext(ctx, q, args...)
}
