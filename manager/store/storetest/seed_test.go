package storetest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/manager/lifecycle"
	"github.com/buildfleet/buildfleet/manager/store"
)

// Seeded rows read back through the store exactly as rows its own calls
// wrote: open requests by the index, the run id, the runner's fields.
func TestSeededRowsReadAsTheStoresOwn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	ctx := context.Background()
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Unix(1_800_000_000, 0)
	var reqs []store.Request
	var runners []store.Runner
	for i, state := range []lifecycle.State{lifecycle.Done, lifecycle.Done, lifecycle.Dispatched} {
		id := string(rune('a' + i))
		reqs = append(reqs, store.Request{ID: id, Repo: "o/r", PR: i + 1, SHA: "abc", Tier: "quick", State: state,
			RunID: int64(10 + i), CreatedAt: at.Add(time.Duration(i) * time.Minute)})
		runners = append(runners, store.Runner{GitHubJobID: int64(100 + i), Attempt: 1, RunID: int64(10 + i), RequestID: id,
			Repo: "o/r", Pool: "p", RunnerName: "runner-" + id, State: "completed", Conclusion: "success", ReceivedAt: at})
	}
	Seed(t, path, reqs, runners)

	open, err := st.OpenRequests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].ID != "c" || open[0].RunID != 12 || !open[0].CreatedAt.Equal(at.Add(2*time.Minute)) {
		t.Fatalf("open requests %+v, want c with run 12", open)
	}
	all, err := st.ListRequests(ctx, 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("requests %+v (%v), want 3", all, err)
	}
	rs, err := st.RunnersOfRequest(ctx, "b")
	if err != nil || len(rs) != 1 {
		t.Fatalf("runners of b %+v (%v), want 1", rs, err)
	}
	if r := rs[0]; r.GitHubJobID != 101 || r.RunnerName != "runner-b" || r.State != "completed" || r.Conclusion != "success" ||
		!r.ReceivedAt.Equal(at) || r.CreatedAt.IsZero() {
		t.Fatalf("runner %+v, want job 101 completed, received at %v", r, at)
	}
	// The store keeps writing after a seed: the seed left no lock behind.
	if _, _, err := st.CreateRequest(ctx, store.Request{ID: "d", Repo: "o/r", PR: 9, SHA: "abc", Tier: "quick", State: lifecycle.Done}); err != nil {
		t.Fatal(err)
	}
}
