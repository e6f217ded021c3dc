package github

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestLastLabelEventHeadRewrites: force pushes and restored head branches
// are collected from every page, in GitHub's order, beside the label.
func TestLastLabelEventHeadRewrites(t *testing.T) {
	ev := func(id int, event, extra, at string) string {
		return fmt.Sprintf(`{"id":%d,"node_id":"x","url":"u","actor":{"login":"alice"},"event":%q,"commit_id":null,"commit_url":null,"created_at":%q,"performed_via_github_app":null%s}`,
			id, event, at, extra)
	}
	lbl := `,"label":{"name":"build","color":"ededed"}`
	items := []string{
		ev(1, "head_ref_force_pushed", "", "2026-01-01T09:00:00Z"),
		ev(2, "labeled", lbl, "2026-01-01T10:00:00Z"),
		ev(3, "head_ref_deleted", "", "2026-01-01T10:30:00Z"),
		ev(4, "head_ref_restored", "", "2026-01-01T10:31:00Z"),
		ev(5, "head_ref_force_pushed", "", "2026-01-01T11:00:00Z"),
	}
	e := newTestEnv(t, func(w http.ResponseWriter, r *http.Request, n int) { pages(w, r, items, 2) })
	got, err := e.c.LastLabelEvent(context.Background(), "o", "r", 3, "build")
	if err != nil || got.Actor != "alice" || !got.At.Equal(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("LastLabelEvent = %+v, %v", got, err)
	}
	want := []string{"09:00", "10:31", "11:00"}
	if len(got.HeadRewrites) != len(want) {
		t.Fatalf("head rewrites = %v, want at %v", got.HeadRewrites, want)
	}
	for i, w := range want {
		if got.HeadRewrites[i].Format("15:04") != w {
			t.Errorf("head rewrite %d at %s, want %s", i, got.HeadRewrites[i].Format("15:04"), w)
		}
	}
}
