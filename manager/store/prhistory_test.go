package store

import (
	"context"
	"testing"
	"time"
)

func TestPullRequestDeliveries(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	t0 := time.Unix(1_700_000_000, 0)
	for i, d := range []struct{ id, event, payload string }{
		{"a", "pull_request", `{"action":"opened","number":7,"repository":{"full_name":"Python/CPython"}}`},
		{"b", "pull_request", `{"action":"opened","number":8,"repository":{"full_name":"python/cpython"}}`},
		{"c", "pull_request", `{"action":"synchronize","number":7,"repository":{"full_name":"other/cpython"}}`},
		{"d", "workflow_job", `{"action":"queued","number":7,"repository":{"full_name":"python/cpython"}}`},
		{"e", "pull_request", `not json at all`},
		{"f", "pull_request", `{"action":"synchronize","number":7,"repository":{"full_name":"python/cpython"}}`},
	} {
		if _, err := s.PutDelivery(ctx, Delivery{ID: d.id, Event: d.event, ReceivedAt: t0.Add(time.Duration(i) * time.Second), Payload: []byte(d.payload)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.PullRequestDeliveries(ctx, "python/cpython", 7)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range got {
		ids = append(ids, d.ID)
	}
	if len(ids) != 2 || ids[0] != "a" || ids[1] != "f" {
		t.Errorf("deliveries of python/cpython#7 = %v, want [a f] (oldest first, repo case-insensitive, other PRs, repos, events and non-JSON left out)", ids)
	}
}
