// Package store is buildfleet's durable state: one embedded SQLite file in
// WAL mode, written with synchronous=FULL so that a committed transaction
// survives a crash of the process or the machine. Schema changes are
// numbered migrations applied at Open.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // pure Go SQLite driver: no cgo at run time
)

// Store is an open database.
type Store struct {
	db    *sql.DB
	turn  chan struct{} // the write turn (writelock.go)
	clock atomic.Pointer[func() time.Time]
}

// SetClock makes the store stamp rows with the given clock instead of
// time.Now: the same clock the trigger and the fleet compare against, so
// ages read back from the store agree with theirs (and with synctest's fake
// time in tests). Call it before handing the store to other goroutines'
// work; it is safe to call at any time.
func (s *Store) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.clock.Store(&now)
}

// now is the store's clock (time.Now unless SetClock was called).
func (s *Store) now() time.Time {
	if f := s.clock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// Open opens (creating when missing) the database at path and migrates it to
// the current schema.
func Open(ctx context.Context, path string) (*Store, error) {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("creating store folder: %w", err)
		}
	}
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		"synchronous(FULL)",
		"busy_timeout(10000)",
		"foreign_keys(ON)",
	} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	s := &Store{db: db, turn: newWriteTurn()}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrating store %s: %w", path, err)
	}
	// Only a file others may read is changed: a read-only or immutable
	// file refuses even a chmod that changes nothing, and such a store
	// must still open so that /readyz can say it cannot write.
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 == 0 {
		return s, nil
	}
	if err := os.Chmod(path, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
		db.Close()
		return nil, fmt.Errorf("restricting store %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database; the WAL is checkpointed by SQLite.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// queryAll runs a query and scans every row with scan; what names the rows
// in errors ("listing runners: …").
func queryAll[T any](ctx context.Context, s *Store, what string, scan func(interface{ Scan(...any) error }) (T, error), q string, args ...any) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing %s: %w", what, err)
	}
	return out, nil
}

// tx runs fn in one immediate transaction and commits it.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	if err := s.takeTurn(ctx); err != nil {
		return err
	}
	defer s.giveTurn()
	t, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		s.reopenIfReadOnly(err)
		return err
	}
	if err := fn(t); err != nil {
		_ = t.Rollback()
		s.reopenIfReadOnly(err)
		return err
	}
	err = t.Commit()
	s.reopenIfReadOnly(err)
	return err
}
