package fleet

import (
	"strings"
	"testing"

	"github.com/buildfleet/buildfleet/config"
)

func TestMatchPool(t *testing.T) {
	pools := []config.Pool{
		{Name: "wide", Labels: []string{"self-hosted", "linux", "x86_64", "quick", "debug"}},
		{Name: "exact", Labels: []string{"self-hosted", "linux", "x86_64", "quick"}},
		{Name: "mac", Labels: []string{"self-hosted", "macos", "arm64", "quick"}},
	}
	for _, tc := range []struct {
		name   string
		labels []string
		want   string
	}{
		{"exact set wins over an earlier superset", []string{"self-hosted", "linux", "x86_64", "quick"}, "exact"},
		{"case-insensitive", []string{"Self-Hosted", "LINUX", "x86_64", "Quick"}, "exact"},
		{"superset when no exact set", []string{"linux", "debug"}, "wide"},
		{"no pool", []string{"self-hosted", "windows"}, ""},
		{"no labels", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if p := matchPool(pools, tc.labels); p != nil {
				got = p.Name
			}
			if got != tc.want {
				t.Errorf("matchPool(%v) = %q, want %q", tc.labels, got, tc.want)
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
