// Package storetest fills a store's file with history fast, for
// benchmarks that need a large history (100,000 finished jobs): through
// the store's own calls each row is a transaction of its own, fsync'd, and
// seeding alone would outlast the benchmark. Only tests import it.
package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/manager/store"
)

// Seed writes requests and their runners into the store file at path (an
// open store sees them: the file is in WAL mode) in one transaction, with
// one prepared statement per table. It writes the columns the store's
// CreateRequest, UpdateRequest (run id, comment id) and CreateRunner would;
// a missing timestamp is now.
func Seed(tb testing.TB, path string, reqs []store.Request, runners []store.Runner) {
	tb.Helper()
	if err := seed(path, reqs, runners); err != nil {
		tb.Fatal(err)
	}
}

func seed(path string, reqs []store.Request, runners []store.Runner) error {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer db.Close()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("seeding %s: %w", path, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	now := time.Now()
	stamp := func(t time.Time) int64 {
		if t.IsZero() {
			return now.UnixNano()
		}
		return t.UnixNano()
	}
	reqStmt, err := tx.PrepareContext(ctx, `INSERT INTO requests
		(id, delivery_id, repo, pr, sha, tier, label, actor, role, builders, state, reason,
		 comment_id, run_id, run_url, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("preparing the requests' insert: %w", err)
	}
	for _, r := range reqs {
		builders := r.Builders
		if builders == "" {
			builders = "[]"
		}
		if _, err := reqStmt.ExecContext(ctx, r.ID, r.DeliveryID, r.Repo, r.PR, r.SHA, r.Tier, r.Label, r.Actor, r.Role,
			builders, string(r.State), r.Reason, nullable(r.CommentID), nullable(r.RunID), r.RunURL,
			stamp(r.CreatedAt), stamp(r.UpdatedAt)); err != nil {
			return fmt.Errorf("seeding request %s: %w", r.ID, err)
		}
	}
	runStmt, err := tx.PrepareContext(ctx, `INSERT INTO runners
		(github_job_id, attempt, run_id, request_id, repo, pool, runner_name, runner_id, nomad_job_id,
		 html_url, state, conclusion, reported, created_at, updated_at, received_at, dispatched_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("preparing the runners' insert: %w", err)
	}
	for _, r := range runners {
		if _, err := runStmt.ExecContext(ctx, r.GitHubJobID, r.Attempt, r.RunID, r.RequestID, r.Repo, r.Pool, r.RunnerName,
			r.RunnerID, r.NomadJobID, r.HTMLURL, r.State, r.Conclusion, r.Reported, stamp(r.CreatedAt), stamp(r.UpdatedAt),
			nanos(r.ReceivedAt), nanos(r.DispatchedAt)); err != nil {
			return fmt.Errorf("seeding runner %s: %w", r.RunnerName, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seeding %s: %w", path, err)
	}
	return nil
}

func nullable(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
