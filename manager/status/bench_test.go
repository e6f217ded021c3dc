package status_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/manager/fleet"
	"github.com/buildfleet/buildfleet/manager/status"
	"github.com/buildfleet/buildfleet/manager/store"
)

// BenchmarkPages renders the grid, a builder page, a request page, the
// front page and the release status with 10,000 requests (20,000 builds)
// in history, against the same pages with 100 (the baseline measured in
// the same run): paginated lists and indexes keep a page's cost to what
// it shows, not to the history behind it.
func BenchmarkPages(b *testing.B) {
	pages := []string{"/", "/grid", "/builders/ubuntu-quick", "/requests/0000000000000064", "/summary"}
	serve := func(b *testing.B, history int) map[string]time.Duration {
		st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "s.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		seedHistory(b, st, history)
		h := status.New(status.Options{Store: st, Config: testConfig(), Logger: slog.New(slog.DiscardHandler)})
		out := map[string]time.Duration{}
		for _, p := range pages {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
			if rec.Code != 200 {
				b.Fatalf("GET %s = %d", p, rec.Code)
			}
		}
		b.ResetTimer()
		for _, p := range pages {
			start := time.Now()
			n := max(b.N, 20) // one render alone is noise: at least 20 per figure
			for i := 0; i < n; i++ {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
			}
			out[p] = time.Since(start) / time.Duration(n)
		}
		return out
	}
	var small map[string]time.Duration
	b.Run("history=100", func(b *testing.B) { small = serve(b, 100) })
	b.Run("history=10000", func(b *testing.B) {
		large := serve(b, 10000)
		for _, p := range pages {
			name := strings.Trim(strings.ReplaceAll(p, "/", "-"), "-")
			if name == "" {
				name = "index"
			}
			if name == "requests-0000000000000064" {
				name = "request"
			}
			b.ReportMetric(float64(large[p].Microseconds()), name+"-µs")
			if small[p] > 0 {
				b.ReportMetric(float64(large[p])/float64(small[p]), name+"-x-vs-history-100")
			}
		}
	})
}

// seedHistory stores n finished quick requests with two builds each in
// one transaction-sized batch per request (the store's own calls).
func seedHistory(b *testing.B, st *store.Store, n int) {
	ctx := context.Background()
	base := time.Now().Add(-time.Duration(n) * time.Minute)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%016x", i+1)
		if _, _, err := st.CreateRequest(ctx, store.Request{ID: id, Repo: "python/cpython", PR: i%700 + 1,
			SHA: strings.Repeat("c", 40), Tier: "quick", Actor: "core-dev", State: "done",
			CreatedAt: base.Add(time.Duration(i) * time.Minute)}); err != nil {
			b.Fatal(err)
		}
		run := int64(i + 1)
		builders := `[{"name":"ubuntu-quick","labels":["buildfleet-x"]},{"name":"macos-refleak","labels":["buildfleet-y"]}]`
		if err := st.UpdateRequest(ctx, id, store.RequestFields{RunID: &run, Builders: &builders}); err != nil {
			b.Fatal(err)
		}
		for j, pool := range []string{"ubuntu-quick", "macos-refleak"} {
			job := int64(2*i + j + 1)
			concl := "success"
			if i%7 == 0 {
				concl = "failure"
			}
			if _, err := st.CreateRunner(ctx, store.Runner{GitHubJobID: job, Attempt: 1, RunID: run, RequestID: id,
				Repo: "python/cpython", Pool: pool, RunnerName: fmt.Sprintf("bf-%s-%d-1", pool, job),
				State: fleet.StateCompleted, Conclusion: concl, HTMLURL: "https://github.example/job"}); err != nil {
				b.Fatal(err)
			}
			host := "donor-" + pool
			s, e := base.Add(time.Duration(i)*time.Minute+time.Second), base.Add(time.Duration(i)*time.Minute+20*time.Minute)
			if err := st.MarkRunner(ctx, job, 1, store.RunnerMarks{NodeName: &host, PlacedAt: &s, RunningAt: &s,
				StartedAt: &s, FinishedAt: &e}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
