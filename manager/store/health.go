package store

import (
	"context"
	"fmt"
	"time"
)

// HostFailure is one infrastructure failure of a host: a runner that never
// started, was lost, or never took its job (migration 6).
type HostFailure struct {
	ID         int64
	Host       string
	RunnerName string
	Kind       string
	Detail     string
	At         time.Time
}

// AddHostFailure records one failure.
func (s *Store) AddHostFailure(ctx context.Context, f HostFailure) error {
	if _, err := s.exec(ctx, `INSERT INTO host_failures (host, runner_name, kind, detail, at) VALUES (?, ?, ?, ?, ?)`,
		f.Host, f.RunnerName, f.Kind, f.Detail, f.At.UnixNano()); err != nil {
		return fmt.Errorf("recording a failure of host %s: %w", f.Host, err)
	}
	return nil
}

func scanHostFailure(sc interface{ Scan(...any) error }) (HostFailure, error) {
	var f HostFailure
	var at int64
	err := sc.Scan(&f.ID, &f.Host, &f.RunnerName, &f.Kind, &f.Detail, &at)
	f.At = time.Unix(0, at)
	return f, err
}

// HostFailures lists a host's failures since since, newest first, at most
// limit.
func (s *Store) HostFailures(ctx context.Context, host string, since time.Time, limit int) ([]HostFailure, error) {
	return queryAll(ctx, s, "host failures", scanHostFailure, `SELECT id, host, runner_name, kind, detail, at
		FROM host_failures WHERE host = ? AND at >= ? ORDER BY at DESC, id DESC LIMIT ?`, host, since.UnixNano(), limit)
}

// Notice is one message to a host's owner on one channel, and what became
// of it.
type Notice struct {
	ID        int64
	Host      string
	Kind      string // ineligible, missing
	Channel   string // email, webhook
	Recipient string
	Owner     string
	Contact   string
	Subject   string
	Body      string
	State     string // pending, sent, failed
	Tries     int
	Error     string
	CreatedAt time.Time
	SentAt    time.Time
}

// Notice states.
const (
	NoticePending = "pending"
	NoticeSent    = "sent"
	NoticeFailed  = "failed"
)

const noticeCols = `id, host, kind, channel, recipient, owner, contact, subject, body, state, tries, error, created_at, sent_at`

func scanNotice(sc interface{ Scan(...any) error }) (Notice, error) {
	var n Notice
	var created, sent int64
	err := sc.Scan(&n.ID, &n.Host, &n.Kind, &n.Channel, &n.Recipient, &n.Owner, &n.Contact, &n.Subject, &n.Body, &n.State, &n.Tries,
		&n.Error, &created, &sent)
	n.CreatedAt, n.SentAt = time.Unix(0, created), unixOrZero(sent)
	return n, err
}

// AddNotice stores a notice to send (state pending).
func (s *Store) AddNotice(ctx context.Context, n Notice) error {
	if _, err := s.exec(ctx, `INSERT INTO notices (host, kind, channel, recipient, owner, contact, subject, body, state, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, n.Host, n.Kind, n.Channel, n.Recipient, n.Owner, n.Contact, n.Subject, n.Body, NoticePending,
		n.CreatedAt.UnixNano()); err != nil {
		return fmt.Errorf("storing a notice for host %s: %w", n.Host, err)
	}
	return nil
}

// PendingNotices lists the notices not sent yet, oldest first.
func (s *Store) PendingNotices(ctx context.Context) ([]Notice, error) {
	return queryAll(ctx, s, "notices", scanNotice, `SELECT `+noticeCols+` FROM notices WHERE state = ? ORDER BY created_at, id`,
		NoticePending)
}

// NoticeTried records one try of a notice: sent (errText empty), or
// failed, for good when final.
func (s *Store) NoticeTried(ctx context.Context, id int64, at time.Time, errText string, final bool) error {
	state, sent := NoticePending, int64(0)
	switch {
	case errText == "":
		state, sent = NoticeSent, at.UnixNano()
	case final:
		state = NoticeFailed
	}
	if _, err := s.exec(ctx, `UPDATE notices SET state = ?, tries = tries + 1, error = ?, sent_at = ? WHERE id = ?`,
		state, errText, sent, id); err != nil {
		return fmt.Errorf("recording notice %d: %w", id, err)
	}
	return nil
}

// HostNotices lists a host's notices, newest first, at most limit.
func (s *Store) HostNotices(ctx context.Context, host string, limit int) ([]Notice, error) {
	return queryAll(ctx, s, "notices", scanNotice, `SELECT `+noticeCols+` FROM notices WHERE host = ?
		ORDER BY created_at DESC, id DESC LIMIT ?`, host, limit)
}

// DeleteKV removes a small piece of state.
func (s *Store) DeleteKV(ctx context.Context, key string) error {
	if _, err := s.exec(ctx, `DELETE FROM kv WHERE key = ?`, key); err != nil {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}
