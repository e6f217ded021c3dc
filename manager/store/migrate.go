package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order; the schema version is SQLite's
// user_version. Never edit a released migration: add one.
var migrations = []string{
	// 1: webhook deliveries, stored before the webhook is answered.
	`CREATE TABLE deliveries (
		id          TEXT PRIMARY KEY,            -- X-GitHub-Delivery
		event       TEXT NOT NULL,               -- X-GitHub-Event
		received_at INTEGER NOT NULL,            -- unix nanoseconds
		payload     BLOB NOT NULL,
		processed_at INTEGER,                    -- null until handled
		error       TEXT                         -- last processing error
	);
	CREATE INDEX deliveries_unprocessed ON deliveries(received_at) WHERE processed_at IS NULL;`,
}

// SchemaVersion is the version Open migrates to.
func SchemaVersion() int { return len(migrations) }

func (s *Store) migrate(ctx context.Context) error {
	var have int
	if err := s.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&have); err != nil {
		return err
	}
	if have > len(migrations) {
		return fmt.Errorf("database schema %d is newer than this buildfleet (%d); upgrade buildfleet", have, len(migrations))
	}
	for v := have; v < len(migrations); v++ {
		err := s.tx(ctx, func(t *sql.Tx) error {
			if _, err := t.ExecContext(ctx, migrations[v]); err != nil {
				return err
			}
			_, err := t.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v+1))
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
	}
	return nil
}
