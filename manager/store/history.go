package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// RunnerTimes are the moments of one runner attempt on its way to a
// result, and the host it ran on (migration 6). They are kept apart from
// Runner because only the pages and the metrics read them.
type RunnerTimes struct {
	NodeID   string
	NodeName string
	// PlacedAt: Nomad gave the runner a host; RunningAt: the runner
	// process started; StartedAt: the runner took its job (in_progress);
	// FinishedAt: the job completed or the attempt was given up.
	PlacedAt   time.Time
	RunningAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
}

// RunnerMarks are the times and host MarkRunner may record; nil is left
// alone. A time is recorded once: the first mark of a moment stays, so a
// replayed event does not move it.
type RunnerMarks struct {
	NodeID, NodeName                           *string
	PlacedAt, RunningAt, StartedAt, FinishedAt *time.Time
}

// MarkRunner records the host and moments of one attempt.
func (s *Store) MarkRunner(ctx context.Context, jobID int64, attempt int, m RunnerMarks) error {
	var sets []string
	var args []any
	if m.NodeID != nil && *m.NodeID != "" {
		sets, args = append(sets, "node_id = ?"), append(args, *m.NodeID)
	}
	if m.NodeName != nil && *m.NodeName != "" {
		sets, args = append(sets, "node_name = ?"), append(args, *m.NodeName)
	}
	for _, t := range []struct {
		col string
		v   *time.Time
	}{{"placed_at", m.PlacedAt}, {"running_at", m.RunningAt}, {"started_at", m.StartedAt}, {"finished_at", m.FinishedAt}} {
		if t.v != nil && !t.v.IsZero() {
			sets = append(sets, t.col+" = CASE WHEN "+t.col+" = 0 THEN ? ELSE "+t.col+" END")
			args = append(args, t.v.UnixNano())
		}
	}
	if len(sets) == 0 {
		return nil
	}
	args = append(args, jobID, attempt)
	if _, err := s.exec(ctx, `UPDATE runners SET `+strings.Join(sets, ", ")+
		` WHERE github_job_id = ? AND attempt = ?`, args...); err != nil {
		return fmt.Errorf("marking runner of job %d: %w", jobID, err)
	}
	return nil
}

// Build is the latest attempt of one job (a builder of one request) with
// its times and the request it belongs to: one cell of the grid, one line
// of a builder's history.
type Build struct {
	Runner
	Times RunnerTimes
	PR    int
	SHA   string
	Tier  string
	Actor string
}

// qualifiedRunnerCols are runnerCols for a query that joins requests.
var qualifiedRunnerCols = func() string {
	cols := strings.Split(runnerCols, ",")
	for i, c := range cols {
		cols[i] = "r." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}()

const buildTail = `, r.node_id, r.node_name, r.placed_at, r.running_at, r.started_at, r.finished_at,
	q.pr, q.sha, q.tier, q.actor FROM runners r JOIN requests q ON q.id = r.request_id`

// latestAttempt keeps one row per job: its latest attempt.
const latestAttempt = ` r.attempt = (SELECT max(x.attempt) FROM runners x WHERE x.github_job_id = r.github_job_id)`

// extraScan scans a row into a scanner's destinations and then extra ones,
// so that scanRunner stays the one place that knows runnerCols.
type extraScan struct {
	sc    interface{ Scan(...any) error }
	extra []any
}

func (e extraScan) Scan(dest ...any) error { return e.sc.Scan(append(dest, e.extra...)...) }

func scanBuild(sc interface{ Scan(...any) error }) (Build, error) {
	var b Build
	var placed, running, started, finished int64
	r, err := scanRunner(extraScan{sc, []any{&b.Times.NodeID, &b.Times.NodeName, &placed, &running, &started,
		&finished, &b.PR, &b.SHA, &b.Tier, &b.Actor}})
	b.Runner = r
	b.Times.PlacedAt, b.Times.RunningAt = unixOrZero(placed), unixOrZero(running)
	b.Times.StartedAt, b.Times.FinishedAt = unixOrZero(started), unixOrZero(finished)
	return b, err
}

func (s *Store) builds(ctx context.Context, where string, args ...any) ([]Build, error) {
	return queryAll(ctx, s, "builds", scanBuild, `SELECT `+qualifiedRunnerCols+buildTail+` WHERE `+where, args...)
}

// BuildsOfRequest returns every attempt of a request's jobs with its
// times, oldest first.
func (s *Store) BuildsOfRequest(ctx context.Context, requestID string) ([]Build, error) {
	return s.builds(ctx, `r.request_id = ? ORDER BY r.created_at, r.github_job_id, r.attempt`, requestID)
}

// BuildsOfRequests returns the latest attempt of each job of the given
// requests: the cells of the grid.
func (s *Store) BuildsOfRequests(ctx context.Context, ids []string) ([]Build, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return s.builds(ctx, `r.request_id IN (?`+strings.Repeat(", ?", len(ids)-1)+`) AND`+latestAttempt, args...)
}

// PoolBuilds returns a pool's latest attempts of each job, newest first,
// created before before (zero: now), at most limit: a builder's history,
// a page at a time.
func (s *Store) PoolBuilds(ctx context.Context, pool string, before time.Time, limit int) ([]Build, error) {
	b := int64(1<<63 - 1)
	if !before.IsZero() {
		b = before.UnixNano()
	}
	return s.builds(ctx, `r.pool = ? AND r.created_at < ? AND`+latestAttempt+` ORDER BY r.created_at DESC LIMIT ?`,
		pool, b, limit)
}

// RequestsPage lists requests newest first, created before before (zero:
// now), at most limit; tier filters when not empty, and dispatchedOnly
// keeps those that got a workflow run (the grid's columns).
func (s *Store) RequestsPage(ctx context.Context, before time.Time, limit int, tier string, dispatchedOnly bool) ([]Request, error) {
	b := int64(1<<63 - 1)
	if !before.IsZero() {
		b = before.UnixNano()
	}
	where, args := `created_at < ?`, []any{b}
	if tier != "" {
		where, args = where+` AND tier = ?`, append(args, tier)
	}
	if dispatchedOnly {
		where += ` AND run_id IS NOT NULL`
	}
	return queryAll(ctx, s, "requests", scanRequest, `SELECT `+requestCols+` FROM requests WHERE `+where+
		` ORDER BY created_at DESC LIMIT ?`, append(args, limit)...)
}

// RunnerTimes returns the host and moments of one attempt.
func (s *Store) RunnerTimes(ctx context.Context, jobID int64, attempt int) (RunnerTimes, error) {
	var t RunnerTimes
	var placed, running, started, finished int64
	err := s.db.QueryRowContext(ctx, `SELECT node_id, node_name, placed_at, running_at, started_at, finished_at
		FROM runners WHERE github_job_id = ? AND attempt = ?`, jobID, attempt).Scan(
		&t.NodeID, &t.NodeName, &placed, &running, &started, &finished)
	if errors.Is(err, sql.ErrNoRows) {
		return t, ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("reading times of job %d: %w", jobID, err)
	}
	t.PlacedAt, t.RunningAt = unixOrZero(placed), unixOrZero(running)
	t.StartedAt, t.FinishedAt = unixOrZero(started), unixOrZero(finished)
	return t, nil
}
