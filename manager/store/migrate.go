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

	// 2: build requests, one row per label event (or operator trigger), with
	// a write-ahead record of each step so that a restart resumes where it
	// stopped and never repeats a step that took effect.
	`CREATE TABLE requests (
		id            TEXT PRIMARY KEY,          -- derived from the delivery: a replay maps to the same row
		delivery_id   TEXT NOT NULL,
		repo          TEXT NOT NULL,             -- owner/repo as configured
		pr            INTEGER NOT NULL,
		sha           TEXT NOT NULL,             -- head SHA at the moment of the label
		tier          TEXT NOT NULL,
		label         TEXT NOT NULL,
		actor         TEXT NOT NULL,             -- sender login, or operator:<name>
		role          TEXT NOT NULL DEFAULT '',
		builders      TEXT NOT NULL DEFAULT '[]',-- JSON sent as the builders input
		state         TEXT NOT NULL,             -- see trigger package
		reason        TEXT NOT NULL DEFAULT '',  -- why refused, skipped or failed
		label_removed INTEGER NOT NULL DEFAULT 0,
		comment_tries INTEGER NOT NULL DEFAULT 0,-- >0 and comment_id null: a comment may exist
		comment_id    INTEGER,
		dispatch_tries INTEGER NOT NULL DEFAULT 0,
		run_id        INTEGER,
		run_url       TEXT NOT NULL DEFAULT '',
		superseded_by TEXT,
		created_at    INTEGER NOT NULL,
		updated_at    INTEGER NOT NULL
	);
	CREATE INDEX requests_open ON requests(state) WHERE state NOT IN ('done', 'refused', 'skipped', 'failed', 'superseded');
	CREATE INDEX requests_pr ON requests(repo, pr, tier, created_at);
	CREATE UNIQUE INDEX requests_run ON requests(run_id) WHERE run_id IS NOT NULL;`,

	// 3: runners, one row per GitHub job and attempt, written before the
	// JIT config is asked for, so that a restart resumes a runner instead of
	// starting a second one. See the fleet package for the states.
	`CREATE TABLE runners (
		github_job_id INTEGER NOT NULL,
		attempt       INTEGER NOT NULL,
		run_id        INTEGER NOT NULL,
		request_id    TEXT NOT NULL,
		repo          TEXT NOT NULL,
		pool          TEXT NOT NULL,
		runner_name   TEXT NOT NULL UNIQUE,
		runner_id     INTEGER NOT NULL DEFAULT 0, -- GitHub's, once registered
		nomad_job_id  TEXT NOT NULL DEFAULT '',
		html_url      TEXT NOT NULL DEFAULT '',
		state         TEXT NOT NULL,
		conclusion    TEXT NOT NULL DEFAULT '',
		reported      TEXT NOT NULL DEFAULT '', -- last status state posted
		created_at    INTEGER NOT NULL,
		updated_at    INTEGER NOT NULL,
		PRIMARY KEY (github_job_id, attempt)
	);
	CREATE INDEX runners_active ON runners(pool) WHERE state IN ('starting', 'dispatched', 'running');`,

	// 4: what Nomad says of each runner (the fleet follows its event
	// stream), when the webhook came and the dispatch went (manager
	// overhead), whether "waiting for a host" was posted, which runner
	// actually took the job; and small key-value state such as the last
	// Nomad index handled, so that a restart resumes the stream.
	`ALTER TABLE runners ADD COLUMN nomad_state  TEXT NOT NULL DEFAULT '';
	ALTER TABLE runners ADD COLUMN nomad_reason  TEXT NOT NULL DEFAULT '';
	ALTER TABLE runners ADD COLUMN received_at   INTEGER NOT NULL DEFAULT 0; -- queued webhook stored
	ALTER TABLE runners ADD COLUMN dispatched_at INTEGER NOT NULL DEFAULT 0; -- Nomad dispatch issued
	ALTER TABLE runners ADD COLUMN waiting       INTEGER NOT NULL DEFAULT 0; -- 1: "waiting for a host" posted
	ALTER TABLE runners ADD COLUMN taken_by      TEXT NOT NULL DEFAULT '';  -- runner that took the job, if not ours
	CREATE INDEX runners_state ON runners(state);
	CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,

	// 5: the report queue: the latest result of each (request, context)
	// to write to GitHub, and what was written. seq grows at every
	// enqueue; a row is pending while seq > written_seq, so superseded
	// updates coalesce into one row and a restart sends what is still
	// pending. See the report package.
	`CREATE TABLE reports (
		request_id  TEXT NOT NULL,
		context     TEXT NOT NULL,              -- status context / check run name; "summary" for the comment
		kind        TEXT NOT NULL,              -- status, check, comment
		repo        TEXT NOT NULL,
		sha         TEXT NOT NULL,
		state       TEXT NOT NULL DEFAULT '',   -- pending, success, failure, error
		payload     BLOB NOT NULL,              -- the latest result (JSON, the report package's)
		seq         INTEGER NOT NULL,
		written_seq INTEGER NOT NULL DEFAULT 0,
		queued_seq  INTEGER NOT NULL,           -- seq at which it last became pending: queue order
		remote_id   INTEGER NOT NULL DEFAULT 0, -- check run or comment id
		tries       INTEGER NOT NULL DEFAULT 0, -- creations tried: >0 with remote_id 0 means it may exist
		writes      INTEGER NOT NULL DEFAULT 0, -- GitHub writes made for this row
		error       TEXT NOT NULL DEFAULT '',   -- why GitHub refused the last write, if it did
		created_at  INTEGER NOT NULL,
		updated_at  INTEGER NOT NULL,
		PRIMARY KEY (request_id, context)
	);
	CREATE INDEX reports_seq ON reports(seq);
	CREATE INDEX reports_pending ON reports(queued_seq) WHERE seq > written_seq;`,

	// 6: what people see. Per runner attempt the host and the moments of
	// its way to a result (placed, runner process started, job started,
	// finished); indexes for the pages' lists (grid, builder history);
	// the infrastructure failures of each host and the notices sent to
	// donors (see the notify package).
	`ALTER TABLE runners ADD COLUMN node_id     TEXT NOT NULL DEFAULT '';
	ALTER TABLE runners ADD COLUMN node_name   TEXT NOT NULL DEFAULT '';
	ALTER TABLE runners ADD COLUMN placed_at   INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE runners ADD COLUMN running_at  INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE runners ADD COLUMN started_at  INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE runners ADD COLUMN finished_at INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX runners_request ON runners(request_id);
	CREATE INDEX runners_pool_created ON runners(pool, created_at);
	CREATE INDEX requests_created ON requests(created_at);
	CREATE TABLE host_failures (
		id          INTEGER PRIMARY KEY,
		host        TEXT NOT NULL,              -- Nomad node name
		runner_name TEXT NOT NULL DEFAULT '',
		kind        TEXT NOT NULL,              -- never_started, lost, not_taken
		detail      TEXT NOT NULL DEFAULT '',
		at          INTEGER NOT NULL
	);
	CREATE INDEX host_failures_host ON host_failures(host, at);
	CREATE TABLE notices (
		id          INTEGER PRIMARY KEY,
		host        TEXT NOT NULL,
		kind        TEXT NOT NULL,              -- why: ineligible, missing
		channel     TEXT NOT NULL,              -- email, webhook
		recipient   TEXT NOT NULL,
		owner       TEXT NOT NULL DEFAULT '',   -- from the node meta, for the webhook
		contact     TEXT NOT NULL DEFAULT '',
		subject     TEXT NOT NULL,
		body        TEXT NOT NULL,
		state       TEXT NOT NULL,              -- pending, sent, failed
		tries       INTEGER NOT NULL DEFAULT 0,
		error       TEXT NOT NULL DEFAULT '',
		created_at  INTEGER NOT NULL,
		sent_at     INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX notices_host ON notices(host, created_at);
	CREATE INDEX notices_pending ON notices(created_at) WHERE state = 'pending';`,
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
