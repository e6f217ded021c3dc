package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/manager/lifecycle"
	"github.com/buildfleet/buildfleet/manager/store"
	"github.com/buildfleet/buildfleet/manager/store/storetest"
)

// BenchmarkReconcileWithHistory measures one reconcile tick of the fleet
// (pending deliveries, runners in flight, the trigger's open requests, the
// orphan sweep's reads) with 1,000, 10,000 and 100,000 finished jobs in
// the store, against the same tick with 100 (the baseline, measured in
// the same run): the cost must grow with what changes, not with history.
// Each figure alternates its ticks with the baseline's and compares
// medians, so a busy moment of the shared machine slows both alike. It
// also reports the process's memory with 10,000 tracked jobs loaded
// (target: under 150 MB RSS), read before the 100,000-job store exists.
func BenchmarkReconcileWithHistory(b *testing.B) {
	ctx := context.Background()
	type fleetAt struct {
		f  *Fleet
		st *store.Store
	}
	open := func(b *testing.B, history int) fleetAt {
		path := filepath.Join(b.TempDir(), "s.db")
		f, st, _, _ := newTestFleetAt(b, path, 4)
		seed(b, path, history)
		runtime.GC() // the seed's garbage is not the tick's
		return fleetAt{f, st}
	}
	tick := func(b *testing.B, x fleetAt) time.Duration {
		start := time.Now()
		x.f.pass(ctx)
		x.f.waitStarts()
		x.f.sweep(ctx)
		if _, err := x.st.OpenRequests(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := x.st.RunnersInState(ctx, activeStates...); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	// compare ticks the baseline and x in turn and returns both medians:
	// one preempted tick in a mean of a few dozen moved a ratio by 3×.
	compare := func(b *testing.B, base, x fleetAt) (time.Duration, time.Duration) {
		b.ResetTimer()
		n := max(b.N, 101)
		bs, xs := make([]time.Duration, 0, n), make([]time.Duration, 0, n)
		for range n {
			bs = append(bs, tick(b, base))
			xs = append(xs, tick(b, x))
		}
		slices.Sort(bs)
		slices.Sort(xs)
		return bs[n/2], xs[n/2]
	}
	base := open(b, 100) // the parent's: it outlives each figure
	b.Run("history=100", func(b *testing.B) {
		small, _ := compare(b, base, base)
		b.ReportMetric(float64(small.Microseconds()), "tick-µs")
	})
	against := func(b *testing.B, history int) fleetAt {
		x := open(b, history)
		small, large := compare(b, base, x)
		b.ReportMetric(float64(large.Microseconds()), "tick-µs")
		b.ReportMetric(float64(small.Microseconds()), "baseline-tick-µs")
		b.ReportMetric(float64(large)/float64(small), "x-vs-history-100")
		return x
	}
	b.Run("history=1000", func(b *testing.B) { against(b, 1000) })
	b.Run("history=10000", func(b *testing.B) {
		against(b, 10000)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
		if rss := rssMB(); rss > 0 {
			b.ReportMetric(rss, "rss-MB")
		}
	})
	b.Run("history=100000", func(b *testing.B) { against(b, 100000) })
}

// seed stores n finished requests, each with one completed runner, and 20
// runners in flight, in one transaction (storetest.Seed).
func seed(b *testing.B, path string, n int) {
	reqs := make([]store.Request, 0, n+20)
	runners := make([]store.Runner, 0, n+20)
	now := time.Now()
	for i := 0; i < n+20; i++ {
		id := fmt.Sprintf("%016x", i+1)
		state, rstate := lifecycle.Done, StateCompleted
		if i >= n {
			state, rstate = lifecycle.Dispatched, StateRunning
		}
		run := int64(i + 1)
		reqs = append(reqs, store.Request{ID: id, Repo: "o/r", PR: i%500 + 1, SHA: strings.Repeat("a", 40),
			Tier: "quick", State: state, RunID: run, CreatedAt: now.Add(-time.Duration(n-i) * time.Minute)})
		runners = append(runners, store.Runner{GitHubJobID: int64(i + 1), Attempt: 1, RunID: run, RequestID: id, Repo: "o/r",
			Pool: "linux-quick", RunnerName: runnerName("linux-quick", int64(i+1), 1), State: rstate})
	}
	storetest.Seed(b, path, reqs, runners)
}

// rssMB reads the process's resident set from /proc (Linux), 0 elsewhere.
func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
