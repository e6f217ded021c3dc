package webhook

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/buildfleet/buildfleet/internal/testenv"
	"github.com/buildfleet/buildfleet/manager/store"
)

// A full disk makes the intake answer 503 (GitHub redelivers later), and
// once room is freed the next delivery is stored without a restart.
func TestFullDiskThenFreed(t *testing.T) {
	dir := testenv.SmallDisk(t, "4m")
	st, err := store.Open(context.Background(), filepath.Join(dir, "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, err := New(Options{Secret: secret, Sink: st, Events: []string{"pull_request"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	deliver := func(i int) int {
		body := []byte(fmt.Sprintf(`{"action":"labeled","number":%d,"pad":"%0512d"}`, i, i))
		return post(h, "pull_request", fmt.Sprintf("full-%d", i), Sign(secret, body), body).Code
	}
	if c := deliver(0); c != 202 {
		t.Fatalf("before the disk filled: %d, want 202", c)
	}
	filler := filepath.Join(dir, "filler")
	if err := testenv.FillDisk(filler); err != nil {
		t.Fatal(err)
	}
	full := 0
	for i := 1; i <= 50; i++ {
		if c := deliver(i); c == 503 {
			full = i
			break
		} else if c != 202 {
			t.Fatalf("delivery %d on a full disk: %d", i, c)
		}
	}
	if full == 0 {
		t.Fatal("no 503 with the disk full")
	}
	// Every delivery while the disk stays full is refused, none half-kept.
	for i := full + 1; i < full+20; i++ {
		if c := deliver(i); c != 503 {
			t.Fatalf("delivery %d on a full disk: %d, want 503", i, c)
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i := 100; i < 105; i++ {
		if c := deliver(i); c != 202 {
			t.Fatalf("delivery %d after room was freed: %d, want 202 without a restart", i, c)
		}
	}
	// The refused delivery is taken when GitHub sends it again.
	if c := deliver(full); c != 202 {
		t.Errorf("redelivery of the refused delivery: %d, want 202", c)
	}
}
