package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Checkpoint copies the WAL into the database file and truncates the WAL
// to zero bytes (TRUNCATE). SQLite's automatic checkpoints never shrink the
// WAL, and they stop while a write fails for lack of space: a WAL grown
// during a burst or an outage would keep its size and fill freed space
// again at once. Readers still using old WAL frames make it a partial
// checkpoint; the next one finishes the work.
func (s *Store) Checkpoint(ctx context.Context) error {
	var busy, logFrames, done int
	if err := s.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done); err != nil {
		return fmt.Errorf("checkpointing the store: %w", err)
	}
	return nil
}

// PruneDeliveries deletes handled deliveries received before the given
// time, at most limit rows (a bounded transaction, so a large backlog is
// pruned in steps without holding the write lock long). Unhandled ones are
// kept whatever their age: they are still work. It returns how many rows
// went.
func (s *Store) PruneDeliveries(ctx context.Context, before time.Time, limit int) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM deliveries WHERE rowid IN (
		SELECT rowid FROM deliveries WHERE processed_at IS NOT NULL AND received_at < ? LIMIT ?)`,
		before.UnixNano(), limit)
	if err != nil {
		return 0, fmt.Errorf("pruning deliveries before %s: %w", before.Format(time.RFC3339), err)
	}
	return res.RowsAffected()
}

// Writable checks that the store can commit a write now: a read-only file
// or a full disk answers reads (Ping) but refuses every delivery.
func (s *Store) Writable(ctx context.Context) error {
	_, err := s.exec(ctx, `INSERT INTO kv (key, value) VALUES ('store_probe', ?)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value`, s.now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		s.reopenIfReadOnly(err)
		return fmt.Errorf("store cannot write: %w", err)
	}
	return nil
}

// reopenIfReadOnly drops the idle connections after a write was refused
// because the file was read-only: SQLite opened them read-only and they
// would stay so after the file became writable again, refusing every
// delivery until a restart. Fresh connections open the file read-write
// when they can.
func (s *Store) reopenIfReadOnly(err error) {
	var se interface{ Code() int }
	if errors.As(err, &se) && se.Code()&0xff == sqliteReadOnly {
		s.db.SetMaxIdleConns(0)
		s.db.SetMaxIdleConns(defaultIdleConns)
	}
}

const (
	sqliteReadOnly   = 8 // SQLITE_READONLY and its extended codes
	defaultIdleConns = 2 // database/sql's default
)
