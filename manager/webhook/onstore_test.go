package webhook

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/buildfleet/buildfleet/manager/store"
)

// TestOnStoreTellsEachBatchOutcome: the manager follows store outages
// through OnStore: nil for a kept batch, the store's error for a refused
// one (answered 503).
func TestOnStoreTellsEachBatchOutcome(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []error
	h, err := New(Options{Secret: secret, Sink: st, Events: []string{"pull_request"}, OnStore: func(err error) {
		mu.Lock()
		got = append(got, err)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	body := []byte(`{"action":"labeled"}`)
	if w := post(h, "pull_request", "kept", Sign(secret, body), body); w.Code != 202 {
		t.Fatalf("kept: %d", w.Code)
	}
	st.Close() // every write fails from now on
	if w := post(h, "pull_request", "refused", Sign(secret, body), body); w.Code != 503 {
		t.Fatalf("refused: %d, want 503", w.Code)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != nil || got[1] == nil {
		t.Errorf("OnStore saw %v, want nil then the store's error", got)
	}
}
