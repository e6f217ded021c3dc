package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Delivery is one webhook delivery as GitHub sent it.
type Delivery struct {
	ID         string
	Event      string
	ReceivedAt time.Time
	Payload    []byte
	// Processed is set on the deliveries read back from the store once
	// their handling ended (MarkProcessed); PutDelivery ignores it.
	Processed bool
}

// PutDelivery stores a delivery durably. It reports false, and changes
// nothing, when a delivery with the same ID is already stored: GitHub's
// redeliveries keep their ID, so this is the dedupe point.
func (s *Store) PutDelivery(ctx context.Context, d Delivery) (bool, error) {
	res, err := s.exec(ctx,
		`INSERT INTO deliveries (id, event, received_at, payload) VALUES (?, ?, ?, ?)
		 ON CONFLICT(id) DO NOTHING`,
		d.ID, d.Event, d.ReceivedAt.UnixNano(), d.Payload)
	if err != nil {
		return false, fmt.Errorf("storing delivery: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("storing delivery: %w", err)
	}
	return n == 1, nil
}

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("not found")

// Delivery returns a stored delivery.
func (s *Store) Delivery(ctx context.Context, id string) (Delivery, error) {
	var d Delivery
	var ns int64
	err := s.db.QueryRowContext(ctx,
		`SELECT id, event, received_at, payload, processed_at IS NOT NULL FROM deliveries WHERE id = ?`, id).
		Scan(&d.ID, &d.Event, &ns, &d.Payload, &d.Processed)
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, ErrNotFound
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("reading delivery: %w", err)
	}
	d.ReceivedAt = time.Unix(0, ns)
	return d, nil
}

// Unprocessed returns up to limit deliveries not yet marked processed,
// oldest first: the work left over by a crash. With events, only
// deliveries of those events are returned: each consumer (trigger, fleet)
// reads and marks only its own, so one cannot mark another's as done.
func (s *Store) Unprocessed(ctx context.Context, limit int, events ...string) ([]Delivery, error) {
	q := `SELECT id, event, received_at, payload, FALSE FROM deliveries WHERE processed_at IS NULL`
	var args []any
	if len(events) > 0 {
		q += ` AND event IN (?` + strings.Repeat(`, ?`, len(events)-1) + `)`
		for _, e := range events {
			args = append(args, e)
		}
	}
	out, err := s.queryDeliveries(ctx, q+` ORDER BY received_at LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("listing deliveries: %w", err)
	}
	return out, nil
}

// queryDeliveries runs a query selecting id, event, received_at, payload
// and whether processed of deliveries, in that order, and reads its rows.
func (s *Store) queryDeliveries(ctx context.Context, q string, args ...any) ([]Delivery, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var ns int64
		if err := rows.Scan(&d.ID, &d.Event, &ns, &d.Payload, &d.Processed); err != nil {
			return nil, err
		}
		d.ReceivedAt = time.Unix(0, ns)
		out = append(out, d)
	}
	return out, rows.Err()
}

// MarkProcessed records that a delivery was handled, with the error that
// ended its handling for good, if any.
func (s *Store) MarkProcessed(ctx context.Context, id string, at time.Time, procErr error) error {
	var msg sql.NullString
	if procErr != nil {
		msg = sql.NullString{String: procErr.Error(), Valid: true}
	}
	_, err := s.exec(ctx,
		`UPDATE deliveries SET processed_at = ?, error = ? WHERE id = ?`, at.UnixNano(), msg, id)
	if err != nil {
		return fmt.Errorf("marking delivery %s: %w", id, err)
	}
	return nil
}

// PutDeliveries stores several deliveries in one transaction (one fsync),
// reporting for each whether it was new. The webhook intake batches
// concurrent deliveries through it.
func (s *Store) PutDeliveries(ctx context.Context, ds []Delivery) ([]bool, error) {
	fresh := make([]bool, len(ds))
	err := s.tx(ctx, func(t *sql.Tx) error {
		st, err := t.PrepareContext(ctx, `INSERT INTO deliveries (id, event, received_at, payload) VALUES (?, ?, ?, ?)
			ON CONFLICT(id) DO NOTHING`)
		if err != nil {
			return err
		}
		defer st.Close()
		for i, d := range ds {
			res, err := st.ExecContext(ctx, d.ID, d.Event, d.ReceivedAt.UnixNano(), d.Payload)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			fresh[i] = n == 1
		}
		return nil
	})
	if err != nil {
		// Under pressure (a full disk) the WAL is what grew: a TRUNCATE
		// checkpoint gives its space back, so the next batch may fit and
		// space freed by the operator is not filled again by the WAL.
		_ = s.Checkpoint(ctx)
		return nil, fmt.Errorf("storing deliveries: %w", err)
	}
	return fresh, nil
}
