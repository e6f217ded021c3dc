package github

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/store"
)

// writeLog is a GitHub stand-in served in process (no socket, so it runs
// in a synctest bubble) that remembers when each write came.
type writeLog struct {
	mu sync.Mutex
	at map[string][]time.Time // by method
}

func (l *writeLog) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.at[r.Method] = append(l.at[r.Method], time.Now())
	l.mu.Unlock()
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodDelete {
		rec.WriteHeader(http.StatusOK)
		_, _ = rec.WriteString(`[]`)
	} else {
		rec.WriteHeader(http.StatusCreated)
		_, _ = rec.WriteString(`{"id":1}`)
	}
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// TestBudgetPrioritisesBuildsAndSurvivesRestart: with a budget of 4 writes
// a minute, reports may use 3; a label removal (unblocks a build) still
// goes at once when reports wait, and a client built again on the same
// store (a restart) does not spend what the last minute already spent.
func TestBudgetPrioritisesBuildsAndSurvivesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		st, err := store.Open(ctx, filepath.Join(t.TempDir(), "bf.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		limits := []Limit{{N: 4, Per: time.Minute}}
		log := &writeLog{at: map[string][]time.Time{}}
		client := func() (*Client, *Budget) {
			b := NewBudget(BudgetOptions{Limits: limits, Journal: st})
			c, err := New(config.GitHub{APIURL: "http://github.invalid/", Token: "t"}, Options{Transport: log, Budget: b})
			if err != nil {
				t.Fatal(err)
			}
			return c, b
		}
		c, b := client()
		t0 := time.Now()
		reports := WithPriority(ctx, Reports)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.CreateStatus(reports, "o", "r", "abc", "success", "", "ok", "ctx"); err != nil {
					t.Error(err)
				}
			}()
		}
		synctest.Wait() // three reports sent, the fourth waits for the window
		if err := c.RemoveLabel(ctx, "o", "r", 1, "test"); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		log.mu.Lock()
		posts, deletes := append([]time.Time(nil), log.at["POST"]...), log.at["DELETE"]
		log.mu.Unlock()
		if len(posts) != 4 || len(deletes) != 1 {
			t.Fatalf("%d statuses and %d label removals, want 4 and 1", len(posts), len(deletes))
		}
		if !deletes[0].Equal(t0) {
			t.Errorf("label removal waited %v behind reports", deletes[0].Sub(t0))
		}
		for i, at := range posts[:3] {
			if !at.Equal(t0) {
				t.Errorf("status %d waited %v with budget left", i, at.Sub(t0))
			}
		}
		if posts[3].Sub(t0) < time.Minute {
			t.Errorf("fourth status after %v: reports used more than their share of the window", posts[3].Sub(t0))
		}
		if u, r := b.Counts(); u != 1 || r != 4 {
			t.Errorf("counted %d unblocking and %d reporting writes, want 1 and 4", u, r)
		}

		// Fill the window (the fourth status and three removals), then
		// restart: the journal still holds the last minute's writes.
		for i := range 3 {
			if err := c.RemoveLabel(ctx, "o", "r", 10+i, "test"); err != nil {
				t.Fatal(err)
			}
		}
		c2, _ := client()
		restart := time.Now()
		if err := c2.RemoveLabel(ctx, "o", "r", 2, "test"); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(restart); waited < time.Minute-time.Second {
			t.Error("after a restart the budget forgot the writes GitHub still counts")
		}
	})
}

// slowWrites is a GitHub that counts each write when it arrives and
// answers it a second later (a busy network or server).
type slowWrites struct {
	writeLog
}

func (s *slowWrites) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.writeLog.RoundTrip(r)
	time.Sleep(time.Second)
	return resp, err
}

// TestBudgetWindowStartsAtTheAnswer: GitHub counts a write when it
// arrives, after we sent it; a window freed from our send time would let
// the next write reach GitHub while GitHub still counts the old one (a
// 403). With 2 writes per 10 s and answers a second late, the third write
// arrives no sooner than 10 s after the first write's answer.
func TestBudgetWindowStartsAtTheAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gh := &slowWrites{writeLog{at: map[string][]time.Time{}}}
		b := NewBudget(BudgetOptions{Limits: []Limit{{N: 2, Per: 10 * time.Second}}})
		c, err := New(config.GitHub{APIURL: "http://github.invalid/", Token: "t"}, Options{Transport: gh, Budget: b})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := c.RemoveLabel(context.Background(), "o", "r", i, "test"); err != nil {
				t.Fatal(err)
			}
		}
		at := gh.at["DELETE"]
		if len(at) != 3 {
			t.Fatalf("%d writes, want 3", len(at))
		}
		// GitHub counted the first at at[0]; its window ends at at[0]+10s.
		if gap := at[2].Sub(at[0]); gap < 10*time.Second+time.Second {
			t.Errorf("third write arrived %v after the first: before the first's answer + 10 s", gap)
		}
	})
}

// TestReportsYieldToABurst: once half a window is spent, a result waits
// while JIT configs and other unblocking writes keep coming, and goes
// BurstQuiet after the last; with the window less than half spent it goes
// at once.
func TestReportsYieldToABurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		gh := &writeLog{at: map[string][]time.Time{}}
		b := NewBudget(BudgetOptions{Limits: []Limit{{N: 20, Per: time.Minute}}})
		c, err := New(config.GitHub{APIURL: "http://github.invalid/", Token: "t"}, Options{Transport: gh, Budget: b})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if err := c.RemoveLabel(ctx, "o", "r", 1, "test"); err != nil {
			t.Fatal(err)
		}
		if err := c.CreateStatus(WithPriority(ctx, Reports), "o", "r", "abc", "pending", "", "running", "ctx"); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(t0); waited != 0 {
			t.Errorf("a result waited %v with the window under half spent", waited)
		}
		for i := range 8 { // 10 of 20 spent
			if err := c.RemoveLabel(ctx, "o", "r", 2+i, "test"); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan time.Time)
		go func() {
			if err := c.CreateStatus(WithPriority(ctx, Reports), "o", "r", "abc", "success", "", "ok", "ctx"); err != nil {
				t.Error(err)
			}
			done <- time.Now()
		}()
		time.Sleep(3 * time.Second)
		if err := c.RemoveLabel(ctx, "o", "r", 20, "test"); err != nil { // the burst goes on
			t.Fatal(err)
		}
		if got, want := (<-done).Sub(t0), 8*time.Second; got != want {
			t.Errorf("the result went %v after the burst began, want %v (5 s after its last build write)", got, want)
		}
	})
}
