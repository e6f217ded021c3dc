package trigger

import (
	"strings"
	"testing"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/store"
)

// The scheduled comment names the results as they will appear: the
// repository's context prefix and the real builder names.
func TestScheduledCommentNamesTheResults(t *testing.T) {
	cfg := config.Config{
		PublicURL:    "https://fleet.example",
		Repositories: []config.Repository{{Name: "python/cpython", ContextPrefix: "buildbot/"}},
		Pools: []config.Pool{
			{Name: "ubuntu-quick", Tier: "quick", Stable: true},
			{Name: "macos-quick", Tier: "quick", Stable: true},
			{Name: "asan", Tier: "quick"},
		},
	}
	for _, tc := range []struct {
		name, builders, want string
	}{
		{"stable pools before the builders are recorded", "", "`buildbot/ubuntu-quick`, `buildbot/macos-quick`"},
		{"the builders input", `[{"name":"asan","labels":["x"]}]`, "`buildbot/asan`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := scheduledComment(cfg, store.Request{ID: "0123456789abcdef", Repo: "python/cpython", Tier: "quick",
				SHA: "abc", Actor: "triager", Builders: tc.builders}, nil)
			if !strings.Contains(body, "Results appear on the commit as "+tc.want+".") {
				t.Errorf("comment lacks %q:\n%s", tc.want, body)
			}
			if strings.Contains(body, "buildfleet/") {
				t.Errorf("comment names the default prefix:\n%s", body)
			}
		})
	}
}
