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

// TestBudgetReportsUseTheWindowAndSurvivesRestart: with a budget of 4
// writes a minute and no build write waiting, 4 reports go at once (they
// use what builds do not need); a label removal then waits for the window
// GitHub counts, and a client built again on the same store (a restart)
// does not spend what the last minute already spent.
func TestBudgetReportsUseTheWindowAndSurvivesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		st := journalStore(t)
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
		wg.Wait()
		log.mu.Lock()
		posts := append([]time.Time(nil), log.at["POST"]...)
		log.mu.Unlock()
		if len(posts) != 4 {
			t.Fatalf("%d statuses, want 4", len(posts))
		}
		for i, at := range posts {
			if !at.Equal(t0) {
				t.Errorf("status %d waited %v with no build write waiting", i, at.Sub(t0))
			}
		}
		if err := c.RemoveLabel(ctx, "o", "r", 1, "test"); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(t0); waited != time.Minute {
			t.Errorf("label removal after %v, want a minute (the window was full)", waited)
		}
		if u, r := b.Counts(); u != 1 || r != 4 {
			t.Errorf("counted %d unblocking and %d reporting writes, want 1 and 4", u, r)
		}

		// Fill the window, then restart: the journal still holds the last
		// minute's writes.
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

// budgetClient is a client on an in-process GitHub with a budget of
// limits.
func budgetClient(t *testing.T, limits ...Limit) (*Client, *Budget) {
	t.Helper()
	b := NewBudget(BudgetOptions{Limits: limits})
	c, err := New(config.GitHub{APIURL: "http://github.invalid/", Token: "t"},
		Options{Transport: &writeLog{at: map[string][]time.Time{}}, Budget: b})
	if err != nil {
		t.Fatal(err)
	}
	return c, b
}

// reporter posts a status as a report (post) and tells when it went
// (report).
func reporter(t *testing.T, c *Client) (chan time.Time, func(sha string)) {
	report := make(chan time.Time, 2)
	return report, func(sha string) {
		if err := c.CreateStatus(WithPriority(context.Background(), Reports), "o", "r", sha, "success", "", "ok", "ctx"); err != nil {
			t.Error(err)
		}
		report <- time.Now()
	}
}

// TestReportsWaitOnlyBehindBuilds: with the window full, a report that
// has waited longer still goes after a build write that waits too (builds
// first), and once no build write waits a report goes as soon as the
// window has room.
func TestReportsWaitOnlyBehindBuilds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c, _ := budgetClient(t, Limit{N: 4, Per: time.Minute})
		t0 := time.Now()
		for i := range 4 { // at 0, 10, 20 and 30 s
			if i > 0 {
				time.Sleep(10 * time.Second)
			}
			if err := c.RemoveLabel(ctx, "o", "r", i, "test"); err != nil {
				t.Fatal(err)
			}
		}
		report, post := reporter(t, c)
		go post("a")
		synctest.Wait() // the report waits for the window
		build := make(chan time.Time, 1)
		go func() {
			if err := c.RemoveLabel(ctx, "o", "r", 9, "test"); err != nil {
				t.Error(err)
			}
			build <- time.Now()
		}()
		if got, want := (<-build).Sub(t0), time.Minute; got != want {
			t.Errorf("the build write went at %v, want %v (the first slot to free)", got, want)
		}
		if got, want := (<-report).Sub(t0), 70*time.Second; got != want {
			t.Errorf("the report went at %v, want %v (the slot after the build's)", got, want)
		}
		// No build waits: a report goes when the next slot frees (80 s).
		go post("b")
		if got, want := (<-report).Sub(t0), 80*time.Second; got != want {
			t.Errorf("the second report went at %v, want %v", got, want)
		}
	})
}

// TestReportsLeaveRoomForExpectedBuilds: with 4 unblocking writes
// expected (2 by the fleet: builders a full pool holds back; 2 by the
// trigger: a request not yet dispatched), a report takes the hour
// window's room only while 4 places stay free for them; the next one
// waits, though the minute window has room, until a source expects fewer.
// The minute window keeps nothing back: a report there delays a build by
// at most a minute.
func TestReportsLeaveRoomForExpectedBuilds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c, b := budgetClient(t, Limit{N: 2, Per: time.Second}, Limit{N: 6, Per: time.Hour})
		// More expected than the hour holds, the window empty: a report
		// still goes (nothing it could leave room for is in the way).
		b.Expect("fleet", 10)
		if err := c.CreateStatus(WithPriority(ctx, Reports), "o", "r", "x", "success", "", "ok", "ctx"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour) // the window empty again
		t0 := time.Now()
		b.Expect("fleet", 2)
		b.Expect("trigger", 2) // the sources add up
		if err := c.RemoveLabel(ctx, "o", "r", 1, "test"); err != nil {
			t.Fatal(err)
		}
		report, post := reporter(t, c)
		// 1 in the hour + this report + 4 expected = 6 of 6: it goes.
		go post("a")
		if got := (<-report).Sub(t0); got != 0 {
			t.Errorf("the first report went at %v, want at once", got)
		}
		// 2 in the hour + 1 + 4 = 7: over what leaves the builds room.
		go post("b")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		select {
		case at := <-report:
			t.Fatalf("a report went at %v while the hour window had room only for the 4 expected JIT configs", at.Sub(t0))
		default:
		}
		// Room tells it beforehand, and gives a build its place.
		if b.Room(WithPriority(ctx, Reports)) {
			t.Error("Room says a report may go while it would take an expected build's place")
		}
		if !b.Room(ctx) {
			t.Error("Room says a build's write must wait with the hour window's room kept for it")
		}
		b.Expect("fleet", 2) // the same count again changes nothing
		synctest.Wait()
		select {
		case at := <-report:
			t.Fatalf("a report went at %v when a source repeated its count", at.Sub(t0))
		default:
		}
		b.Expect("trigger", 0) // the request dispatched (or refused)
		if got := (<-report).Sub(t0); got != 10*time.Second {
			t.Errorf("the second report went at %v, want 10s (when the trigger expected fewer)", got)
		}
		// The expected builds' writes get their room: 2 more unblocking
		// writes go within the minute windows, not an hour later.
		for i := range 2 {
			if err := c.RemoveLabel(ctx, "o", "r", 2+i, "test"); err != nil {
				t.Fatal(err)
			}
		}
		if got := time.Since(t0); got > 12*time.Second {
			t.Errorf("the builds' writes ended at %v, want within the minute windows", got)
		}
	})
}

// TestBudgetRestartCountsWritesInFlightFromItsStart: a write sent but not
// answered when the manager died may have reached GitHub any time before
// the restart; the restarted budget counts it from its own start, while a
// write answered before the last journal entry keeps its time. With 2
// writes per 10 s: A answered at 0 s, B in flight at 0 s, a restart at
// 3 s: the next write waits for A (10 s), the one after it for B as of
// the restart (13 s), not for B's send time (10 s: GitHub could still
// count B, and answer 403).
func TestBudgetRestartCountsWritesInFlightFromItsStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		st := journalStore(t)
		limits := []Limit{{N: 2, Per: 10 * time.Second}}
		t0 := time.Now()
		b := NewBudget(BudgetOptions{Limits: limits, Journal: st})
		a, err := b.wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b.answered(a)
		if _, err := b.wait(ctx); err != nil { // B: no answer, the process dies
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		b2 := NewBudget(BudgetOptions{Limits: limits, Journal: st})
		for i, want := range []time.Duration{10 * time.Second, 13 * time.Second} {
			if err := b2.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			if got := time.Since(t0); got != want {
				t.Errorf("write %d after the restart went at %v, want %v", i+1, got, want)
			}
		}
	})
}

// journalStore is a store for a budget's journal, closed with the test.
func journalStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
