package trigger

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/buildfleet/buildfleet/config"
)

func TestBuildersGetOwnBindingLabels(t *testing.T) {
	pools := []config.Pool{
		{Name: "linux", Labels: []string{"self-hosted", "linux"}},
		{Name: "mac", Labels: []string{"self-hosted", "macos"}},
	}
	seen := map[string]bool{}
	re := regexp.MustCompile(`^buildfleet-[a-z2-7]{26}$`)
	for range 50 {
		s, err := buildersJSON(pools)
		if err != nil {
			t.Fatal(err)
		}
		var bs []Builder
		if err := json.Unmarshal([]byte(s), &bs); err != nil {
			t.Fatal(err)
		}
		if len(bs) != 2 || bs[0].Name != "linux" || bs[1].Name != "mac" {
			t.Fatalf("builders %s", s)
		}
		for _, b := range bs {
			if len(b.Labels) != 1 || !re.MatchString(b.Labels[0]) || seen[b.Labels[0]] {
				t.Fatalf("builder %+v: want one fresh random label, no pool label", b)
			}
			seen[b.Labels[0]] = true
			if got, ok := BuilderOf(s, b.Labels); !ok || got.Name != b.Name {
				t.Errorf("BuilderOf(%v) = %+v, %v", b.Labels, got, ok)
			}
		}
		if _, ok := BuilderOf(s, pools[0].Labels); ok {
			t.Errorf("the pool's own labels found a builder")
		}
	}
}
