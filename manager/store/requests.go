package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/buildfleet/buildfleet/manager/lifecycle"
)

// ErrConflict is returned by UpdateRequest when the request is no longer
// in the state (or at the try count) the caller read: another actor took
// the step first. The caller reloads the request and decides again.
var ErrConflict = errors.New("request changed by another actor")

// openFilter selects requests whose handling has not ended. It is spelled
// out to match the partial index requests_open; a test checks it against
// lifecycle.Finals.
const openFilter = `state NOT IN ('done', 'refused', 'skipped', 'failed', 'superseded')`

// Request is one build request: a trigger label added by someone (or an
// operator's trigger command) on one PR at one SHA.
type Request struct {
	ID            string
	DeliveryID    string
	Repo          string
	PR            int
	SHA           string
	Tier          string
	Label         string
	Actor         string
	Role          string
	Builders      string
	State         lifecycle.State
	Reason        string
	LabelRemoved  bool
	CommentTries  int
	CommentID     int64
	DispatchTries int
	RunID         int64
	RunURL        string
	SupersededBy  string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

const requestCols = `id, delivery_id, repo, pr, sha, tier, label, actor, role, builders, state, reason,
	label_removed, comment_tries, comment_id, dispatch_tries, run_id, run_url, superseded_by, created_at, updated_at`

func scanRequest(sc interface{ Scan(...any) error }) (Request, error) {
	var r Request
	var commentID, runID sql.NullInt64
	var superseded sql.NullString
	var created, updated int64
	err := sc.Scan(&r.ID, &r.DeliveryID, &r.Repo, &r.PR, &r.SHA, &r.Tier, &r.Label, &r.Actor, &r.Role,
		&r.Builders, &r.State, &r.Reason, &r.LabelRemoved, &r.CommentTries, &commentID, &r.DispatchTries,
		&runID, &r.RunURL, &superseded, &created, &updated)
	if err != nil {
		return r, err
	}
	r.CommentID, r.RunID, r.SupersededBy = commentID.Int64, runID.Int64, superseded.String
	r.CreatedAt, r.UpdatedAt = time.Unix(0, created), time.Unix(0, updated)
	return r, nil
}

// CreateRequest inserts a request unless one with its ID exists; it returns
// the stored row either way, so a replayed delivery resumes the original.
func (s *Store) CreateRequest(ctx context.Context, r Request) (Request, bool, error) {
	now := s.now().UnixNano()
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Unix(0, now)
	}
	res, err := s.exec(ctx, `INSERT INTO requests
		(id, delivery_id, repo, pr, sha, tier, label, actor, role, builders, state, reason, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`,
		r.ID, r.DeliveryID, r.Repo, r.PR, r.SHA, r.Tier, r.Label, r.Actor, r.Role, r.Builders, r.State, r.Reason,
		r.CreatedAt.UnixNano(), now)
	if err != nil {
		return Request{}, false, fmt.Errorf("creating request: %w", err)
	}
	n, _ := res.RowsAffected()
	got, err := s.Request(ctx, r.ID)
	return got, n == 1, err
}

// Request returns one request.
func (s *Store) Request(ctx context.Context, id string) (Request, error) {
	r, err := scanRequest(s.db.QueryRowContext(ctx, `SELECT `+requestCols+` FROM requests WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Request{}, ErrNotFound
	}
	if err != nil {
		return Request{}, fmt.Errorf("reading request %s: %w", id, err)
	}
	return r, nil
}

// RequestByRun returns the request that dispatched a workflow run: the
// check that a queued job belongs to a run buildfleet started.
func (s *Store) RequestByRun(ctx context.Context, runID int64) (Request, error) {
	r, err := scanRequest(s.db.QueryRowContext(ctx, `SELECT `+requestCols+` FROM requests WHERE run_id = ?`, runID))
	if errors.Is(err, sql.ErrNoRows) {
		return Request{}, ErrNotFound
	}
	if err != nil {
		return Request{}, fmt.Errorf("reading request of run %d: %w", runID, err)
	}
	return r, nil
}

// RequestFields are the columns UpdateRequest may set. Nil pointers are
// left alone.
//
// A state change is a compare-and-set: State needs From, the state the
// caller read, and lifecycle must allow the move. Try counters
// (CommentTries, DispatchTries) are claims: setting one to n applies only
// over n-1, so two processes never both take try n.
type RequestFields struct {
	From          *lifecycle.State
	State         *lifecycle.State
	Reason        *string
	Role          *string
	Builders      *string
	LabelRemoved  *bool
	CommentTries  *int
	CommentID     *int64
	DispatchTries *int
	RunID         *int64
	RunURL        *string
	SupersededBy  *string
}

// UpdateRequest writes the given fields of one request in one transaction.
func (s *Store) UpdateRequest(ctx context.Context, id string, f RequestFields) error {
	var sets, conds []string
	var args, condArgs []any
	add := func(col string, v any) { sets = append(sets, col+" = ?"); args = append(args, v) }
	cond := func(c string, v any) { conds = append(conds, c); condArgs = append(condArgs, v) }
	if f.State != nil {
		if f.From == nil {
			return fmt.Errorf("updating request %s: a state change to %s needs the state it comes from", id, *f.State)
		}
		if err := lifecycle.Check(*f.From, *f.State); err != nil {
			return fmt.Errorf("updating request %s: %w", id, err)
		}
		add("state", *f.State)
		cond("state = ?", *f.From)
	} else if f.From != nil {
		cond("state = ?", *f.From)
	}
	if f.CommentTries != nil {
		cond("comment_tries = ?", *f.CommentTries-1)
	}
	if f.DispatchTries != nil {
		cond("dispatch_tries = ?", *f.DispatchTries-1)
	}
	if f.Reason != nil {
		add("reason", *f.Reason)
	}
	if f.Role != nil {
		add("role", *f.Role)
	}
	if f.Builders != nil {
		add("builders", *f.Builders)
	}
	if f.LabelRemoved != nil {
		add("label_removed", *f.LabelRemoved)
	}
	if f.CommentTries != nil {
		add("comment_tries", *f.CommentTries)
	}
	if f.CommentID != nil {
		add("comment_id", *f.CommentID)
	}
	if f.DispatchTries != nil {
		add("dispatch_tries", *f.DispatchTries)
	}
	if f.RunID != nil {
		add("run_id", *f.RunID)
	}
	if f.RunURL != nil {
		add("run_url", *f.RunURL)
	}
	if f.SupersededBy != nil {
		add("superseded_by", *f.SupersededBy)
	}
	add("updated_at", s.now().UnixNano())
	args = append(args, id)
	args = append(args, condArgs...)
	where := "id = ?"
	for _, c := range conds {
		where += " AND " + c
	}
	res, err := s.exec(ctx, `UPDATE requests SET `+strings.Join(sets, ", ")+` WHERE `+where, args...)
	if err != nil {
		return fmt.Errorf("updating request %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		cur, err := s.Request(ctx, id)
		if err != nil {
			return err
		}
		if len(conds) > 0 {
			return fmt.Errorf("updating request %s (now %s, comment try %d, dispatch try %d): %w",
				id, cur.State, cur.CommentTries, cur.DispatchTries, ErrConflict)
		}
		return ErrNotFound
	}
	return nil
}

// OpenRequests returns the requests whose handling has not ended, oldest
// first: the work to resume after a restart. The partial index of open
// requests is named: left to itself SQLite walks created_at over the whole
// history to skip the sort, and a tick cost 6× more with 10,000 requests.
func (s *Store) OpenRequests(ctx context.Context) ([]Request, error) {
	return s.queryRequests(ctx, `SELECT `+requestCols+` FROM requests INDEXED BY requests_open WHERE `+openFilter+` ORDER BY created_at`)
}

// PreviousRequests returns the requests of the same PR and tier created
// before the given one, newest first.
func (s *Store) PreviousRequests(ctx context.Context, r Request) ([]Request, error) {
	return s.queryRequests(ctx, `SELECT `+requestCols+` FROM requests
		WHERE repo = ? AND pr = ? AND tier = ? AND id != ? AND created_at <= ? ORDER BY created_at DESC LIMIT 20`,
		r.Repo, r.PR, r.Tier, r.ID, r.CreatedAt.UnixNano())
}

// ListRequests returns the most recent requests, newest first.
func (s *Store) ListRequests(ctx context.Context, limit int) ([]Request, error) {
	return s.queryRequests(ctx, `SELECT `+requestCols+` FROM requests ORDER BY created_at DESC LIMIT ?`, limit)
}

func (s *Store) queryRequests(ctx context.Context, q string, args ...any) ([]Request, error) {
	return queryAll(ctx, s, "requests", scanRequest, q, args...)
}
