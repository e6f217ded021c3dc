package nomad_test

import (
	"context"
	"testing"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/nomadtest"
	"github.com/buildfleet/buildfleet/manager/nomad"
)

func TestPoolHosts(t *testing.T) {
	ag := nomadtest.Start(t, nomadtest.Options{NodeMaxAllocs: 3, Meta: map[string]string{nomad.DefaultTierMetaKey: "quick, refleak"}})
	c, err := nomad.New(config.Nomad{Address: ag.Addr, Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	pool := func(platform, tier string) config.Pool {
		return config.Pool{Name: "p", Platform: platform, Tier: tier, NomadJob: "runner-p"}
	}
	tests := []struct {
		name string
		pool config.Pool
		want int
	}{
		{"matching platform and tier", pool("linux-x86_64", "quick"), 1},
		{"second tier in the list", pool("linux-x86_64", "refleak"), 1},
		{"other os", pool("macos-arm64", "quick"), 0},
		{"other arch", pool("linux-aarch64", "quick"), 0},
		{"tier the host does not serve", pool("linux-x86_64", "nightly"), 0},
	}
	for _, tt := range tests {
		hs, err := c.PoolHosts(context.Background(), tt.pool, "")
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if len(hs) != tt.want {
			t.Errorf("%s: %d hosts, want %d", tt.name, len(hs), tt.want)
			continue
		}
		if tt.want == 1 {
			h := hs[0]
			if h.Status != "ready" || !h.Eligible || h.Draining || h.Slots != 3 || h.Running != 0 || h.LastSeen.IsZero() {
				t.Errorf("%s: host %+v; want ready, eligible, 3 slots, idle", tt.name, h)
			}
		}
	}
}
