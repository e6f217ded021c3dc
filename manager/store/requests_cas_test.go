package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/manager/lifecycle"
)

// TestOpenFilterMatchesLifecycle: the literal filter (kept literal for the
// partial index) names exactly the final states.
func TestOpenFilterMatchesLifecycle(t *testing.T) {
	for _, s := range lifecycle.All() {
		in := strings.Contains(openFilter, "'"+string(s)+"'")
		if in != s.Final() {
			t.Errorf("state %s: in the open filter's exclusions = %v, final = %v", s, in, s.Final())
		}
	}
}

// TestStateCompareAndSet: two handles on one file (two processes) race to
// move the same request; exactly one wins each move, the other gets
// ErrConflict. Moves the lifecycle forbids are refused before any write.
func TestStateCompareAndSet(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bf.db")
	a, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	const n = 20
	for i := 0; i < n; i++ {
		id := string(rune('a'+i)) + "-req"
		if _, _, err := a.CreateRequest(ctx, Request{ID: id, Repo: "o/r", PR: 1, State: lifecycle.Accepted}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for k, st := range []*Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				from, to, tries := lifecycle.Accepted, lifecycle.Dispatched, 1
				errs[k] = st.UpdateRequest(ctx, id, RequestFields{From: &from, State: &to, DispatchTries: &tries})
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrConflict):
				t.Fatalf("request %s: %v, want nil or ErrConflict", id, err)
			}
		}
		if won != 1 {
			t.Fatalf("request %s: %d winners, want exactly 1 (%v)", id, won, errs)
		}
	}

	// A try counter is a claim even without a state change.
	if _, _, err := a.CreateRequest(ctx, Request{ID: "tries", Repo: "o/r", State: lifecycle.Accepted}); err != nil {
		t.Fatal(err)
	}
	one := 1
	if err := a.UpdateRequest(ctx, "tries", RequestFields{CommentTries: &one}); err != nil {
		t.Fatal(err)
	}
	if err := b.UpdateRequest(ctx, "tries", RequestFields{CommentTries: &one}); !errors.Is(err, ErrConflict) {
		t.Fatalf("second claim of comment try 1: %v, want ErrConflict", err)
	}

	// Forbidden moves and moves without a source are errors, and write nothing.
	from, to := lifecycle.Accepted, lifecycle.Done
	if err := a.UpdateRequest(ctx, "tries", RequestFields{From: &from, State: &to}); err == nil {
		t.Fatal("accepted → done allowed")
	}
	if err := a.UpdateRequest(ctx, "tries", RequestFields{State: &to}); err == nil {
		t.Fatal("a state change without From allowed")
	}
	r, err := a.Request(ctx, "tries")
	if err != nil || r.State != lifecycle.Accepted {
		t.Fatalf("after refused moves: %+v, %v", r.State, err)
	}
	missing := lifecycle.Accepted
	if err := a.UpdateRequest(ctx, "nope", RequestFields{From: &missing, State: &to}); err == nil {
		t.Fatal("moving a missing request succeeded")
	}
}

// TestStoreClock: rows are stamped with the injected clock.
func TestStoreClock(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	st.SetClock(func() time.Time { return at })
	if _, _, err := st.CreateRequest(ctx, Request{ID: "c", Repo: "o/r", State: lifecycle.Checking}); err != nil {
		t.Fatal(err)
	}
	r, err := st.Request(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if !r.CreatedAt.Equal(at) || !r.UpdatedAt.Equal(at) {
		t.Fatalf("created %v updated %v, want %v", r.CreatedAt, r.UpdatedAt, at)
	}
}
