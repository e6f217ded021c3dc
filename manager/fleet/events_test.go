package fleet

import (
	"strings"
	"testing"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/store"
)

func TestBuilderPool(t *testing.T) {
	f := New(Options{Config: config.Config{Pools: []config.Pool{
		{Name: "linux-quick", Labels: []string{"self-hosted", "linux", "x86_64", "quick"}},
		{Name: "mac", Labels: []string{"self-hosted", "macos", "arm64", "quick"}},
	}}})
	req := store.Request{Builders: `[{"name":"linux-quick","labels":["buildfleet-aaaa"]},{"name":"mac","labels":["buildfleet-bbbb"]},{"name":"gone","labels":["buildfleet-cccc"]}]`}
	for _, tc := range []struct {
		name   string
		labels []string
		want   string
	}{
		{"the builder's label", []string{"buildfleet-bbbb"}, "mac"},
		{"case-insensitive", []string{"BuildFleet-AAAA"}, "linux-quick"},
		{"the pool's own labels are no builder's", []string{"self-hosted", "linux", "x86_64", "quick"}, ""},
		{"a builder's label plus another", []string{"buildfleet-aaaa", "self-hosted"}, ""},
		{"a pool no longer configured", []string{"buildfleet-cccc"}, ""},
		{"no labels", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			p, why := f.builderPool(req, tc.labels)
			if p != nil {
				got = p.Name
			}
			if got != tc.want || (p == nil) != (why != "") {
				t.Errorf("builderPool(%v) = %q (%q), want %q", tc.labels, got, why, tc.want)
			}
		})
	}
}

func TestRunnerName(t *testing.T) {
	for _, tc := range []struct{ pool, want string }{
		{"linux-x86_64-quick", "bf-linux-x86_64-quick-42-1"},
		{"a.b/c", "bf-a-b-c-42-1"},
	} {
		if got := runnerName(tc.pool, 42, 1); got != tc.want {
			t.Errorf("runnerName(%q) = %q, want %q", tc.pool, got, tc.want)
		}
	}
	long := runnerName(strings.Repeat("p", 100), 123456789012, 3)
	if len(long) != 64 || !strings.HasSuffix(long, "-123456789012-3") {
		t.Errorf("long name %q (%d chars): want 64 chars keeping the job and attempt", long, len(long))
	}
}

func TestStatusOf(t *testing.T) {
	for conclusion, want := range map[string]string{
		"success": "success", "skipped": "success", "failure": "failure", "timed_out": "failure",
		"cancelled": "error", "action_required": "error", "": "error",
	} {
		if got, _ := statusOf(conclusion); got != want {
			t.Errorf("statusOf(%q) = %q, want %q", conclusion, got, want)
		}
	}
}
