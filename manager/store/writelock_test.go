package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// A write waits for the store's write turn and gives up with its context;
// it runs once the turn is free.
func TestWriteWaitsForItsTurn(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.takeTurn(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.PutKV(cctx, "k", "first") }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("write while another held the turn: %v, want context.Canceled", err)
	}
	if v, _ := s.GetKV(ctx, "k"); v != "" {
		t.Fatalf("a write that never had its turn stored %q", v)
	}
	go func() { done <- s.PutKV(ctx, "k", "second") }()
	s.giveTurn()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v, _ := s.GetKV(ctx, "k"); v != "second" {
		t.Fatalf("kv %q after the turn was given, want second", v)
	}
	// Transactions take the same turn.
	if _, err := s.PutDeliveries(ctx, []Delivery{{ID: "d1", Event: "ping", Payload: []byte("{}")}}); err != nil {
		t.Fatal(err)
	}
}
