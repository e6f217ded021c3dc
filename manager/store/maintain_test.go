package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFullStoreRecovers: with the database capped (SQLite's max_page_count
// stands in for a full disk), a delivery that does not fit is refused with
// an error (the webhook answers 503); once space is freed (old handled
// deliveries pruned) the next one is stored without reopening the store.
func TestFullStoreRecovers(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bf.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.db.SetMaxOpenConns(1) // the cap is per connection
	var pages int
	if err := s.db.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages+200)); err != nil {
		t.Fatal(err)
	}
	old := time.Unix(1000, 0)
	payload := []byte(`{"pad":"` + strings.Repeat("x", 32<<10) + `"}`)
	var full error
	stored := 0
	for i := 0; i < 1000 && full == nil; i++ {
		_, full = s.PutDeliveries(ctx, []Delivery{{ID: fmt.Sprintf("d-%d", i), Event: "pull_request", ReceivedAt: old, Payload: payload}})
		if full == nil {
			full = s.MarkProcessed(ctx, fmt.Sprintf("d-%d", i), old, nil)
			stored++
		}
	}
	if full == nil || stored == 0 {
		t.Fatalf("the capped store never filled (%d stored)", stored)
	}
	n, err := s.PruneDeliveries(ctx, old.Add(time.Second), 1000)
	if err != nil || n < int64(stored-1) {
		t.Fatalf("pruned %d of %d: %v", n, stored, err)
	}
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutDeliveries(ctx, []Delivery{{ID: "after", Event: "pull_request", ReceivedAt: time.Now(), Payload: payload}}); err != nil {
		t.Fatalf("after freeing space: %v", err)
	}
	if err := s.Writable(ctx); err != nil {
		t.Errorf("after freeing space: %v", err)
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		// TRUNCATE leaves an empty WAL; the one write since adds a few pages.
		if fi.Size() > 1<<20 {
			t.Errorf("WAL is %d bytes after a TRUNCATE checkpoint", fi.Size())
		}
	}
}

// TestPruneKeepsUnhandled: retention never drops a delivery still to be
// handled, nor a recent one.
func TestPruneKeepsUnhandled(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old, recent := time.Unix(1000, 0), time.Unix(5000, 0)
	for _, d := range []Delivery{
		{ID: "old-done", Event: "e", ReceivedAt: old, Payload: []byte(`{}`)},
		{ID: "old-open", Event: "e", ReceivedAt: old, Payload: []byte(`{}`)},
		{ID: "new-done", Event: "e", ReceivedAt: recent, Payload: []byte(`{}`)},
	} {
		if _, err := s.PutDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"old-done", "new-done"} {
		if err := s.MarkProcessed(ctx, id, recent, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.PruneDeliveries(ctx, time.Unix(3000, 0), 100); err != nil || n != 1 {
		t.Fatalf("pruned %d: %v; want 1", n, err)
	}
	for id, want := range map[string]bool{"old-done": false, "old-open": true, "new-done": true} {
		_, err := s.Delivery(ctx, id)
		if (err == nil) != want {
			t.Errorf("%s kept = %v, want %v", id, err == nil, want)
		}
	}
}
