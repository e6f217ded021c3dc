package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Runner is one ephemeral runner started (or being started) for one
// attempt at one GitHub job. The fleet package owns its states.
type Runner struct {
	GitHubJobID int64
	Attempt     int
	RunID       int64
	RequestID   string
	Repo        string
	Pool        string
	RunnerName  string
	RunnerID    int64
	NomadJobID  string
	HTMLURL     string
	State       string
	Conclusion  string
	Reported    string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// NomadState and NomadReason are the last state Nomad reported for the
	// runner's child (nomad.State) and why, e.g. a blocked placement.
	NomadState  string
	NomadReason string
	// ReceivedAt is when the queued webhook was stored, DispatchedAt when
	// the Nomad dispatch was issued (zero until then).
	ReceivedAt   time.Time
	DispatchedAt time.Time
	// Waiting is set once "waiting for a host" was posted for the attempt.
	Waiting bool
	// TakenBy names the runner that took the job when it was not this
	// attempt's own (another job's runner with the same labels).
	TakenBy string
}

const runnerCols = `github_job_id, attempt, run_id, request_id, repo, pool, runner_name, runner_id,
	nomad_job_id, html_url, state, conclusion, reported, created_at, updated_at,
	nomad_state, nomad_reason, received_at, dispatched_at, waiting, taken_by`

func scanRunner(sc interface{ Scan(...any) error }) (Runner, error) {
	var r Runner
	var created, updated, received, dispatched int64
	err := sc.Scan(&r.GitHubJobID, &r.Attempt, &r.RunID, &r.RequestID, &r.Repo, &r.Pool, &r.RunnerName,
		&r.RunnerID, &r.NomadJobID, &r.HTMLURL, &r.State, &r.Conclusion, &r.Reported, &created, &updated,
		&r.NomadState, &r.NomadReason, &received, &dispatched, &r.Waiting, &r.TakenBy)
	r.CreatedAt, r.UpdatedAt = time.Unix(0, created), time.Unix(0, updated)
	r.ReceivedAt, r.DispatchedAt = unixOrZero(received), unixOrZero(dispatched)
	return r, err
}

// CreateRunner inserts a runner unless its (job, attempt) exists, and
// returns the stored row either way: a replayed queued event resumes the
// runner it started before.
func (s *Store) CreateRunner(ctx context.Context, r Runner) (Runner, error) {
	now := s.now().UnixNano()
	_, err := s.exec(ctx, `INSERT INTO runners
		(github_job_id, attempt, run_id, request_id, repo, pool, runner_name, runner_id, nomad_job_id,
		 html_url, state, conclusion, reported, created_at, updated_at, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(github_job_id, attempt) DO NOTHING`,
		r.GitHubJobID, r.Attempt, r.RunID, r.RequestID, r.Repo, r.Pool, r.RunnerName, r.RunnerID, r.NomadJobID,
		r.HTMLURL, r.State, r.Conclusion, r.Reported, now, now, nanos(r.ReceivedAt))
	if err != nil {
		return Runner{}, fmt.Errorf("creating runner %s: %w", r.RunnerName, err)
	}
	return s.Runner(ctx, r.GitHubJobID, r.Attempt)
}

// Runner returns one attempt of a job's runner.
func (s *Store) Runner(ctx context.Context, jobID int64, attempt int) (Runner, error) {
	r, err := scanRunner(s.db.QueryRowContext(ctx,
		`SELECT `+runnerCols+` FROM runners WHERE github_job_id = ? AND attempt = ?`, jobID, attempt))
	if errors.Is(err, sql.ErrNoRows) {
		return Runner{}, ErrNotFound
	}
	if err != nil {
		return Runner{}, fmt.Errorf("reading runner of job %d: %w", jobID, err)
	}
	return r, nil
}

// LatestRunner returns the highest attempt of a job's runner.
func (s *Store) LatestRunner(ctx context.Context, jobID int64) (Runner, error) {
	r, err := scanRunner(s.db.QueryRowContext(ctx,
		`SELECT `+runnerCols+` FROM runners WHERE github_job_id = ? ORDER BY attempt DESC LIMIT 1`, jobID))
	if errors.Is(err, sql.ErrNoRows) {
		return Runner{}, ErrNotFound
	}
	if err != nil {
		return Runner{}, fmt.Errorf("reading runner of job %d: %w", jobID, err)
	}
	return r, nil
}

// RunnersOfRequest returns every runner row of a request, oldest first.
func (s *Store) RunnersOfRequest(ctx context.Context, requestID string) ([]Runner, error) {
	return s.runners(ctx,
		`SELECT `+runnerCols+` FROM runners WHERE request_id = ? ORDER BY created_at, github_job_id, attempt`, requestID)
}

// ActiveRunners counts a pool's runners in the given states (the fleet's
// "occupies a slot" states), for max_runners.
func (s *Store) ActiveRunners(ctx context.Context, pool string, states ...string) (int, error) {
	if len(states) == 0 {
		return 0, nil
	}
	args := []any{pool}
	for _, st := range states {
		args = append(args, st)
	}
	var n int
	// "+pool" keeps SQLite from reading the pool's whole history through
	// runners_pool_created: the states in flight (index runners_state) are
	// the few rows to look at.
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM runners WHERE +pool = ? AND state IN (?`+
		strings.Repeat(", ?", len(states)-1)+`)`, args...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting runners of %s: %w", pool, err)
	}
	return n, nil
}

// RunnerFields are the columns UpdateRunner may set; nil is left alone.
type RunnerFields struct {
	RunnerID   *int64
	NomadJobID *string
	HTMLURL    *string
	State      *string
	Conclusion *string
	Reported   *string
	// Since migration 4.
	NomadState   *string
	NomadReason  *string
	DispatchedAt *time.Time
	Waiting      *bool
	TakenBy      *string
}

// UpdateRunner writes the given fields of one runner attempt.
func (s *Store) UpdateRunner(ctx context.Context, jobID int64, attempt int, f RunnerFields) error {
	var sets []string
	var args []any
	add := func(col string, v any) { sets = append(sets, col+" = ?"); args = append(args, v) }
	if f.RunnerID != nil {
		add("runner_id", *f.RunnerID)
	}
	if f.NomadJobID != nil {
		add("nomad_job_id", *f.NomadJobID)
	}
	if f.HTMLURL != nil {
		add("html_url", *f.HTMLURL)
	}
	if f.State != nil {
		add("state", *f.State)
	}
	if f.Conclusion != nil {
		add("conclusion", *f.Conclusion)
	}
	if f.Reported != nil {
		add("reported", *f.Reported)
	}
	if f.NomadState != nil {
		add("nomad_state", *f.NomadState)
	}
	if f.NomadReason != nil {
		add("nomad_reason", *f.NomadReason)
	}
	if f.DispatchedAt != nil {
		add("dispatched_at", nanos(*f.DispatchedAt))
	}
	if f.Waiting != nil {
		add("waiting", *f.Waiting)
	}
	if f.TakenBy != nil {
		add("taken_by", *f.TakenBy)
	}
	add("updated_at", s.now().UnixNano())
	args = append(args, jobID, attempt)
	res, err := s.exec(ctx, `UPDATE runners SET `+strings.Join(sets, ", ")+
		` WHERE github_job_id = ? AND attempt = ?`, args...)
	if err != nil {
		return fmt.Errorf("updating runner of job %d: %w", jobID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
