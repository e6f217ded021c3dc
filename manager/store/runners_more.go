package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func unixOrZero(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// RunnerByName returns the attempt whose runner has this name (names are
// unique).
func (s *Store) RunnerByName(ctx context.Context, name string) (Runner, error) {
	r, err := scanRunner(s.db.QueryRowContext(ctx,
		`SELECT `+runnerCols+` FROM runners WHERE runner_name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Runner{}, ErrNotFound
	}
	if err != nil {
		return Runner{}, fmt.Errorf("reading runner %s: %w", name, err)
	}
	return r, nil
}

// RunnersInState lists the runners in the given states, oldest first. The
// states used here are the open ones (starting, dispatched, failed), which
// an index keeps cheap: the cost follows the work in flight, not history.
func (s *Store) RunnersInState(ctx context.Context, states ...string) ([]Runner, error) {
	if len(states) == 0 {
		return nil, nil
	}
	args := make([]any, len(states))
	for i, st := range states {
		args[i] = st
	}
	return s.runners(ctx, `SELECT `+runnerCols+` FROM runners WHERE state IN (?`+
		strings.Repeat(", ?", len(states)-1)+`) ORDER BY created_at`, args...)
}

// RunnersOfRun lists every attempt of every job of a workflow run.
func (s *Store) RunnersOfRun(ctx context.Context, runID int64) ([]Runner, error) {
	return s.runners(ctx, `SELECT `+runnerCols+` FROM runners WHERE run_id = ? ORDER BY created_at`, runID)
}

func (s *Store) runners(ctx context.Context, q string, args ...any) ([]Runner, error) {
	return queryAll(ctx, s, "runners", scanRunner, q, args...)
}

// DispatchLatencies returns, for runners dispatched since since, the time
// from the queued webhook being stored to the Nomad dispatch being issued
// (the manager's own overhead on the way to a runner).
func (s *Store) DispatchLatencies(ctx context.Context, since time.Time) ([]time.Duration, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT dispatched_at - received_at FROM runners
		WHERE dispatched_at >= ? AND received_at > 0 AND dispatched_at > 0`, nanos(since))
	if err != nil {
		return nil, fmt.Errorf("reading dispatch latencies: %w", err)
	}
	defer rows.Close()
	var out []time.Duration
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, time.Duration(n))
	}
	return out, rows.Err()
}

// GetKV returns a small piece of state ("" when unset).
func (s *Store) GetKV(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", key, err)
	}
	return v, nil
}

// PutKV sets a small piece of state.
func (s *Store) PutKV(ctx context.Context, key, value string) error {
	_, err := s.exec(ctx, `INSERT INTO kv (key, value) VALUES (?, ?)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("writing %s: %w", key, err)
	}
	return nil
}
