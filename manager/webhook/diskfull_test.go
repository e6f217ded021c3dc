package webhook

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildfleet/buildfleet/internal/testenv"
	"github.com/buildfleet/buildfleet/manager/store"
)

// TestFullDiskThen202WithoutRestart: the store lives on a small tmpfs the
// test mounts (root only). Deliveries fill it until the webhook answers 503
// (GitHub may redeliver); once space is freed, the very next delivery is
// stored and answered 202, without reopening anything.
func TestFullDiskThen202WithoutRestart(t *testing.T) {
	dir := testenv.SmallDisk(t, "2m")
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ballast := filepath.Join(dir, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 768<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	var notified int
	h, err := New(Options{Secret: secret, Sink: st, Events: []string{"pull_request"}, Notify: func() { notified++ }})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { h.Run(runCtx); close(done) }()
	defer func() { cancel(); <-done }()

	body := []byte(`{"action":"labeled","pad":"` + strings.Repeat("x", 64<<10) + `"}`)
	full := false
	for i := 0; i < 100 && !full; i++ {
		w := post(h, "pull_request", fmt.Sprintf("fill-%d", i), Sign(secret, body), body)
		switch w.Code {
		case 202:
		case 503:
			full = true
		default:
			t.Fatalf("delivery %d: %d %s", i, w.Code, w.Body)
		}
	}
	if !full {
		t.Fatal("the 2 MB store never filled")
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if w := post(h, "pull_request", "after-free", Sign(secret, body), body); w.Code != 202 {
		t.Fatalf("after space was freed: %d %s, want 202 without a restart", w.Code, w.Body)
	}
	if _, err := st.Delivery(ctx, "after-free"); err != nil {
		t.Errorf("the delivery answered 202 is not stored: %v", err)
	}
}
