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
	host := "linux-" + hostArch()
	other := "linux-aarch64"
	if hostArch() == "aarch64" {
		other = "linux-x86_64"
	}
	tests := []struct {
		name      string
		pool      config.Pool
		want      int
		placeable bool
	}{
		{"matching platform and tier", pool(host, "quick"), 1, true},
		{"second tier in the list", pool(host, "refleak"), 1, true},
		{"other os", pool("macos-arm64", "quick"), 0, false},
		{"other arch", pool(other, "quick"), 0, false},
		// In the pool's node pool, so listed, but Nomad would not place it.
		{"tier the host does not serve", pool(host, "nightly"), 1, false},
	}
	for _, tt := range tests {
		hs, err := c.PoolHosts(context.Background(), tt.pool)
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
			if h.Placeable != tt.placeable || h.Placeable == (h.Why != "") {
				t.Errorf("%s: placeable %v (%s), want %v", tt.name, h.Placeable, h.Why, tt.placeable)
			}
		}
	}
}
