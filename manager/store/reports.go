package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Report is one row of the report queue.
type Report struct {
	RequestID  string
	Context    string
	Kind       string
	Repo       string
	SHA        string
	State      string
	Payload    []byte
	Seq        int64
	WrittenSeq int64
	RemoteID   int64
	Tries      int
	Writes     int
	Error      string
}

// Pending reports whether the row holds something not written yet.
func (r Report) Pending() bool { return r.Seq > r.WrittenSeq }

const reportCols = `request_id, context, kind, repo, sha, state, payload, seq, written_seq, remote_id, tries, writes, error`

func scanReport(sc interface{ Scan(...any) error }) (Report, error) {
	var r Report
	err := sc.Scan(&r.RequestID, &r.Context, &r.Kind, &r.Repo, &r.SHA, &r.State, &r.Payload, &r.Seq,
		&r.WrittenSeq, &r.RemoteID, &r.Tries, &r.Writes, &r.Error)
	return r, err
}

// EnqueueReport stores a new version of a (request, context) row in one
// transaction. merge gets the stored row (nil when there is none) and the
// new one, and returns the row to store, or false to keep the stored one
// (an out-of-order update). It returns whether an unwritten version was
// replaced (coalesced) and whether anything was stored.
func (s *Store) EnqueueReport(ctx context.Context, r Report, merge func(old *Report, r Report) (Report, bool)) (coalesced, stored bool, err error) {
	err = s.tx(ctx, func(t *sql.Tx) error {
		coalesced, stored = false, false
		old, err := scanReport(t.QueryRowContext(ctx, `SELECT `+reportCols+` FROM reports WHERE request_id = ? AND context = ?`,
			r.RequestID, r.Context))
		var prev *Report
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			prev = &old
		}
		next, ok := merge(prev, r)
		if !ok {
			return nil
		}
		var seq int64
		if err := t.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) + 1 FROM reports`).Scan(&seq); err != nil {
			return err
		}
		now := s.now().UnixNano()
		if prev == nil {
			_, err = t.ExecContext(ctx, `INSERT INTO reports (request_id, context, kind, repo, sha, state, payload, seq,
				queued_seq, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				next.RequestID, next.Context, next.Kind, next.Repo, next.SHA, next.State, next.Payload, seq, seq, now, now)
		} else {
			coalesced = prev.Pending()
			// A row keeps its place in the queue while it waits; it joins the
			// end when it becomes pending again.
			_, err = t.ExecContext(ctx, `UPDATE reports SET kind = ?, repo = ?, sha = ?, state = ?, payload = ?, seq = ?,
				queued_seq = CASE WHEN seq > written_seq THEN queued_seq ELSE ? END, updated_at = ?
				WHERE request_id = ? AND context = ?`,
				next.Kind, next.Repo, next.SHA, next.State, next.Payload, seq, seq, now, r.RequestID, r.Context)
		}
		stored = err == nil
		return err
	})
	if err != nil {
		return false, false, fmt.Errorf("enqueueing report %s of %s: %w", r.Context, r.RequestID, err)
	}
	return coalesced, stored, nil
}

// NextReport returns the pending row that has waited longest; none is
// ErrNotFound.
func (s *Store) NextReport(ctx context.Context) (Report, error) {
	r, err := scanReport(s.db.QueryRowContext(ctx, `SELECT `+reportCols+` FROM reports
		WHERE seq > written_seq ORDER BY queued_seq LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return Report{}, ErrNotFound
	}
	if err != nil {
		return Report{}, fmt.Errorf("reading the report queue: %w", err)
	}
	return r, nil
}

// PendingReports counts the rows waiting to be written.
func (s *Store) PendingReports(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM reports WHERE seq > written_seq`).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting pending reports: %w", err)
	}
	return n, nil
}

// ReportsOfRequest returns the rows of one request in context order.
func (s *Store) ReportsOfRequest(ctx context.Context, requestID string) ([]Report, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+reportCols+` FROM reports WHERE request_id = ? ORDER BY context`, requestID)
	if err != nil {
		return nil, fmt.Errorf("listing reports of %s: %w", requestID, err)
	}
	defer rows.Close()
	var out []Report
	for rows.Next() {
		r, err := scanReport(rows)
		if err != nil {
			return nil, fmt.Errorf("listing reports of %s: %w", requestID, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ReportTried counts one creation attempt (check run, comment) before it is
// sent, so that after a crash the writer looks for it before creating it.
func (s *Store) ReportTried(ctx context.Context, requestID, context string) error {
	return s.updateReport(ctx, `tries = tries + 1`, requestID, context)
}

// ReportRemote records the id of the check run or comment of a row.
func (s *Store) ReportRemote(ctx context.Context, requestID, context string, id int64) error {
	return s.updateReport(ctx, `remote_id = ?`, requestID, context, id)
}

// ReportWritten marks the version seq of a row as written (or refused for
// good, with errText), counting writes GitHub writes. A newer version
// enqueued meanwhile stays pending.
func (s *Store) ReportWritten(ctx context.Context, requestID, context string, seq int64, writes int, errText string) error {
	return s.updateReport(ctx, `written_seq = max(written_seq, ?), writes = writes + ?, error = ?`,
		requestID, context, seq, writes, errText)
}

func (s *Store) updateReport(ctx context.Context, set, requestID, context string, args ...any) error {
	args = append(args, s.now().UnixNano(), requestID, context)
	res, err := s.exec(ctx, `UPDATE reports SET `+set+`, updated_at = ? WHERE request_id = ? AND context = ?`, args...)
	if err != nil {
		return fmt.Errorf("updating report %s of %s: %w", context, requestID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
