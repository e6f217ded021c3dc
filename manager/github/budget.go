package github

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Priority orders content-creating calls when GitHub's write budget is
// short: what unblocks a build (JIT configs, dispatches, label removals,
// runner removals) goes before what only reports (statuses, check runs,
// comments).
type Priority int

const (
	// Unblocks is the default: a build waits on the call.
	Unblocks Priority = iota
	// Reports marks a call that only tells people what happened; it
	// waits while an unblocking call waits, and otherwise goes as soon as
	// the window has room.
	Reports
)

type priorityKey struct{}

// WithPriority marks the calls made with ctx.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

func priorityOf(ctx context.Context) Priority {
	p, _ := ctx.Value(priorityKey{}).(Priority)
	return p
}

type noWaitKey struct{}

// ErrBudgetBusy is the error of a call made with WithoutWaiting when the
// write budget had no room for it at once: it was not sent (nor, when it
// was a retry, acted on by GitHub: only a "not now" answer is retried).
var ErrBudgetBusy = errors.New("github write budget has no room now")

// WithoutWaiting marks the calls made with ctx as not worth waiting for
// the write budget: one that finds no room fails at once with
// ErrBudgetBusy, so that a loop with more urgent work (the trigger's next
// dispatch) is not held by a report, which it tries again later.
func WithoutWaiting(ctx context.Context) context.Context {
	return context.WithValue(ctx, noWaitKey{}, true)
}

// IsWithoutWaiting tells whether ctx was made by WithoutWaiting.
func IsWithoutWaiting(ctx context.Context) bool {
	v, _ := ctx.Value(noWaitKey{}).(bool)
	return v
}

// Limit is one window of GitHub's secondary limit on content-creating
// requests: at most N in any span of Per, per credential.
type Limit struct {
	N   int
	Per time.Duration
}

// DefaultWriteLimits are GitHub's documented limits: 80 content-creating
// requests a minute and 500 an hour.
func DefaultWriteLimits() []Limit {
	return []Limit{{N: 80, Per: time.Minute}, {N: 500, Per: time.Hour}}
}

// Journal keeps the budget's recent writes across restarts (the store's
// key-value table): a manager restarted in a burst must not spend again
// what GitHub still counts.
type Journal interface {
	GetKV(ctx context.Context, key string) (string, error)
	PutKV(ctx context.Context, key, value string) error
}

// BudgetOptions configure a Budget.
type BudgetOptions struct {
	// Limits are the windows (default DefaultWriteLimits).
	Limits []Limit
	// Journal, when set, persists the writes under Key.
	Journal Journal
	Key     string
	// Now and Sleep are the clock (default time.Now and a timer).
	Now   func() time.Time
	Sleep func(context.Context, time.Duration) error
}

// Budget is one credential's write budget: every content-creating call of
// a Client made with it waits here before each attempt (a retry after
// Retry-After counts again, as it does with GitHub). It remembers the
// times of the last writes, so no span of a window ever holds more than
// its N. Reports use whatever the builds do not need: they wait while an
// unblocking write waits (builds first when both wait), and they leave
// room in the long windows for the unblocking writes known to come
// (Expect: the trigger's requests not yet dispatched, each a label
// removal, a dispatch and a JIT config per builder; the builders a full
// pool holds back or a start slot keeps waiting, each a JIT config),
// so in a burst a JIT config is never behind a status, not even one an
// hour later, and once the builds' writes are out the results take the
// whole window.
type Budget struct {
	o    BudgetOptions
	mu   sync.Mutex
	sent []time.Time // oldest first, at most the largest N
	// inflight counts the writes of sent not answered yet, by the
	// UnixNano of their send time: the journal marks them, since a
	// restart cannot know when GitHub counted them (see load).
	inflight map[int64]int
	// builds counts the unblocking writes waiting for the window; a
	// report waits while it is not zero.
	builds int
	// expected is how many unblocking writes are known to come, by
	// source (Expect); a report leaves room for their sum in every
	// window but the shortest.
	expected map[string]int
	// changed is closed (and replaced) when builds or expected drops:
	// the reports waiting on it look again.
	changed chan struct{}
	// counts by priority, for the figures.
	counts [2]int
	loaded bool
}

// NewBudget builds a budget; with a Journal it starts from the writes
// recorded there.
func NewBudget(o BudgetOptions) *Budget {
	if len(o.Limits) == 0 {
		o.Limits = DefaultWriteLimits()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	if o.Key == "" {
		o.Key = "github_writes"
	}
	return &Budget{o: o, changed: make(chan struct{})}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waitLocked returns how long a write must wait at now for room in
// every window.
func (b *Budget) waitLocked(now time.Time) time.Duration {
	var d time.Duration
	for _, l := range b.o.Limits {
		c := max(1, l.N)
		n := 0
		for i := len(b.sent) - 1; i >= 0 && now.Sub(b.sent[i]) < l.Per; i-- {
			n++
			if n == c {
				d = max(d, b.sent[i].Add(l.Per).Sub(now))
				break
			}
		}
	}
	return d
}

// Expect sets how many unblocking writes source knows to come before
// long (the trigger: what its requests not yet dispatched will write; the
// fleet: a JIT config for each builder a full pool holds back or that
// waits for a start slot); each
// source's latest count replaces its previous one, and reports leave room
// for the sum. They leave it in every window but the shortest: a report
// that took the shortest window's room would delay a build by at most
// that window (a minute on GitHub), one that took the hour's by up to the
// hour. With a single window nothing is reserved.
func (b *Budget) Expect(source string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = max(0, n)
	if b.expected == nil {
		b.expected = map[string]int{}
	}
	if n < b.expected[source] {
		b.wakeLocked()
	}
	if n == 0 {
		delete(b.expected, source)
		return
	}
	b.expected[source] = n
}

// expectedLocked is the sum of the sources' expected writes.
func (b *Budget) expectedLocked() int {
	n := 0
	for _, e := range b.expected {
		n += e
	}
	return n
}

// reservedLocked returns how long a report must wait at now for room in
// the long windows beyond the expected unblocking writes: 0 when it may
// go, else until the oldest write that keeps it back leaves its window
// (or sooner, when expected drops).
func (b *Budget) reservedLocked(now time.Time) time.Duration {
	expected := b.expectedLocked()
	if expected == 0 || len(b.o.Limits) < 2 {
		return 0
	}
	shortest := b.o.Limits[0].Per
	for _, l := range b.o.Limits {
		shortest = min(shortest, l.Per)
	}
	var d time.Duration
	for _, l := range b.o.Limits {
		if l.Per == shortest {
			continue
		}
		// The report may go if the window keeps room for itself and
		// the expected writes: at most N - expected - 1 already in it.
		allowed := l.N - expected - 1
		in := 0
		for i := len(b.sent) - 1; i >= 0 && now.Sub(b.sent[i]) < l.Per; i-- {
			in++
		}
		if in <= allowed || in == 0 {
			continue // room, or an empty window (more expected than it holds)
		}
		// The in-window writes leave oldest first: wait until enough
		// of them have (all of them when nothing may be left).
		leave := in - max(0, allowed)
		first := len(b.sent) - in
		d = max(d, b.sent[first+leave-1].Add(l.Per).Sub(now))
	}
	return d
}

// holdLocked returns how long a write of priority p must wait at now for
// room, and whether it is a report behind a waiting unblocking write.
func (b *Budget) holdLocked(now time.Time, p Priority) (time.Duration, bool) {
	d := b.waitLocked(now)
	if p == Reports {
		d = max(d, b.reservedLocked(now))
	}
	return d, p == Reports && b.builds > 0
}

// Room reports whether a write of ctx's priority would go now without
// waiting (it counts nothing: a caller that must not wait asks first).
func (b *Budget) Room(ctx context.Context) bool {
	b.load(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	d, behind := b.holdLocked(b.o.Now(), priorityOf(ctx))
	return d <= 0 && !behind
}

// Wait blocks until a write of ctx's priority may go, then counts it.
func (b *Budget) Wait(ctx context.Context) error {
	_, err := b.wait(ctx)
	return err
}

// wait is Wait, returning the time the write was counted at (for
// answered).
func (b *Budget) wait(ctx context.Context) (time.Time, error) {
	p := priorityOf(ctx)
	b.load(ctx)
	waiting := false // counted in builds
	for {
		b.mu.Lock()
		now := b.o.Now()
		d, behind := b.holdLocked(now, p)
		if d <= 0 && !behind {
			if waiting {
				b.buildGoneLocked()
			}
			b.spendLocked(now, p)
			snapshot := b.journalLocked()
			b.mu.Unlock()
			b.save(ctx, snapshot)
			return now, nil
		}
		if IsWithoutWaiting(ctx) {
			b.mu.Unlock()
			return time.Time{}, ErrBudgetBusy
		}
		if p == Unblocks && !waiting {
			waiting = true
			b.builds++
		}
		changed := b.changed
		if behind && d <= 0 {
			// Room, but a build's write waits for it: look again when
			// that write went (or at the latest a window on).
			d = b.longestLocked()
		}
		b.mu.Unlock()
		var err error
		if p == Reports {
			err = b.sleepOrChange(ctx, d, changed)
		} else {
			err = b.o.Sleep(ctx, d)
		}
		if err != nil {
			if waiting {
				b.mu.Lock()
				b.buildGoneLocked()
				b.mu.Unlock()
			}
			return time.Time{}, err
		}
	}
}

// buildGoneLocked counts off a waiting unblocking write and wakes the
// reports behind it.
func (b *Budget) buildGoneLocked() {
	b.builds--
	b.wakeLocked()
}

// wakeLocked wakes the reports waiting for a change.
func (b *Budget) wakeLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// longestLocked is the longest window.
func (b *Budget) longestLocked() time.Duration {
	var longest time.Duration
	for _, l := range b.o.Limits {
		longest = max(longest, l.Per)
	}
	return longest
}

// sleepOrChange sleeps d on the budget's clock, or until changed closes.
func (b *Budget) sleepOrChange(ctx context.Context, d time.Duration, changed <-chan struct{}) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-changed:
			cancel()
		case <-sctx.Done():
		}
	}()
	// An error is sctx's end: ctx's, or a change (look again).
	_ = b.o.Sleep(sctx, d)
	if err := ctx.Err(); err != nil {
		return err
	}
	return nil
}

// answered moves a write counted at sent to the time its answer came.
// GitHub counts a write when it arrives, somewhat after we counted it;
// were the window to free from our send time, a busy machine or network
// could send the next write while GitHub still counts the old one, and
// get a 403. From the answer's time the window is never early (it is
// late by at most one round trip). The journal, written when a write is
// counted, has its answer's time from the next write on; until then it
// marks the write in flight (see load).
func (b *Budget) answered(sent time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.o.Now()
	if k := sent.UnixNano(); b.inflight[k] > 1 {
		b.inflight[k]--
	} else {
		delete(b.inflight, k)
	}
	for i := len(b.sent) - 1; i >= 0; i-- {
		if b.sent[i].Equal(sent) {
			b.sent[i] = now
			slices.SortFunc(b.sent, func(x, y time.Time) int { return x.Compare(y) })
			return
		}
	}
}

func (b *Budget) spendLocked(now time.Time, p Priority) {
	b.sent = append(b.sent, now)
	if b.inflight == nil {
		b.inflight = map[int64]int{}
	}
	b.inflight[now.UnixNano()]++
	b.counts[p]++
	b.trimLocked()
}

func (b *Budget) trimLocked() {
	keep := 0
	for _, l := range b.o.Limits {
		keep = max(keep, l.N)
	}
	if len(b.sent) > keep {
		b.sent = append(b.sent[:0], b.sent[len(b.sent)-keep:]...)
	}
	// A write never answered (its request failed before it was sent)
	// stays in flight until it leaves sent.
	if len(b.sent) > 0 {
		oldest := b.sent[0].UnixNano()
		for k := range b.inflight {
			if k < oldest {
				delete(b.inflight, k)
			}
		}
	}
}

// Counts returns the writes counted since start, by priority.
func (b *Budget) Counts() (unblocks, reports int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.counts[Unblocks], b.counts[Reports]
}

// journal is the budget's record in the store: the times of its recent
// writes (UnixNano), and which of them had no answer yet.
type journal struct {
	Sent     []int64 `json:"sent"`
	InFlight []int64 `json:"in_flight,omitempty"`
}

func (b *Budget) journalLocked() *journal {
	if b.o.Journal == nil {
		return nil
	}
	j := &journal{Sent: make([]int64, len(b.sent))}
	for i, t := range b.sent {
		j.Sent[i] = t.UnixNano()
	}
	for k, n := range b.inflight {
		for range n {
			j.InFlight = append(j.InFlight, k)
		}
	}
	return j
}

// load reads the journal once; a journal that cannot be read starts the
// budget empty (GitHub's own answers still hold it back). A write the
// journal has in flight may have reached GitHub any time before this
// process started (its answer lost with the process that sent it: a
// crash, or a kill): it counts from now, so that its window is never
// early. (A journal of an older version, a bare list of times, is taken
// as answered.)
func (b *Budget) load(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.loaded || b.o.Journal == nil {
		return
	}
	b.loaded = true
	v, err := b.o.Journal.GetKV(ctx, b.o.Key)
	if err != nil || v == "" {
		return
	}
	var j journal
	if strings.HasPrefix(v, "[") {
		err = json.Unmarshal([]byte(v), &j.Sent)
	} else {
		err = json.Unmarshal([]byte(v), &j)
	}
	if err != nil {
		return
	}
	open := map[int64]int{}
	for _, k := range j.InFlight {
		open[k]++
	}
	now := b.o.Now()
	for _, n := range j.Sent {
		at := time.Unix(0, n)
		if open[n] > 0 {
			open[n]--
			at = now
		}
		b.sent = append(b.sent, at)
	}
	slices.SortFunc(b.sent, func(x, y time.Time) int { return x.Compare(y) })
	b.trimLocked()
}

func (b *Budget) save(ctx context.Context, j *journal) {
	if b.o.Journal == nil || j == nil {
		return
	}
	v, _ := json.Marshal(j)
	_ = b.o.Journal.PutKV(context.WithoutCancel(ctx), b.o.Key, string(v))
}

// budgeted tells the calls GitHub counts against the secondary limit:
// content-creating methods, except minting an App installation token.
func budgeted(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete:
	default:
		return false
	}
	return !strings.HasPrefix(strings.TrimPrefix(r.URL.Path, "/api/v3"), "/app/")
}

// LeastTime is the least time the limits let writes content-creating
// calls take: the first N of each window go at once, every further N
// waits one more window. A burst of requests cannot drain faster, so its
// drain time is judged against this figure.
func LeastTime(writes int, limits []Limit) time.Duration {
	var least time.Duration
	for _, l := range limits {
		if l.N > 0 && writes > 0 {
			least = max(least, time.Duration((writes-1)/l.N)*l.Per)
		}
	}
	return least
}
