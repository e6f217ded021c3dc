package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestPlacementOf(t *testing.T) {
	tiers := Constraint{"${meta.buildfleet_tiers}", "set_contains", "quick"}
	tests := []struct {
		name string
		pool Pool
		want Placement
		err  string
	}{
		{"defaults", Pool{Name: "l", Platform: "linux-x86_64", Tier: "quick"}, Placement{
			NodePool: "buildfleet-linux-x86_64", Datacenters: []string{"*"}, Driver: "raw_exec", MinIsolation: "none",
			Constraints: []Constraint{{"${attr.kernel.name}", "=", "linux"}, {"${attr.cpu.arch}", "=", "amd64"}, tiers},
		}, ""},
		{"arm spelled arm64 on linux shares the aarch64 pool", Pool{Name: "l", Platform: "linux-arm64", Tier: "quick"}, Placement{
			NodePool: "buildfleet-linux-aarch64", Datacenters: []string{"*"}, Driver: "raw_exec", MinIsolation: "none",
			Constraints: []Constraint{{"${attr.kernel.name}", "=", "linux"}, {"${attr.cpu.arch}", "=", "arm64"}, tiers},
		}, ""},
		{"explicit pool, docker, container minimum", Pool{Name: "d", Platform: "linux-x86_64", Tier: "quick",
			NodePool: "big", Datacenters: []string{"ams*"}, Driver: "docker", MinIsolation: "container"}, Placement{
			NodePool: "big", Datacenters: []string{"ams*"}, Driver: "docker", MinIsolation: "container",
			Constraints: []Constraint{{"${attr.kernel.name}", "=", "linux"}, {"${attr.cpu.arch}", "=", "amd64"}, tiers,
				{"${meta.buildfleet_isolation}", "set_contains_any", "container,vm"}},
		}, ""},
		{"user minimum admits user, container and vm", Pool{Name: "m", Platform: "macos-arm64", Tier: "quick", MinIsolation: "user"}, Placement{
			NodePool: "buildfleet-macos-arm64", Datacenters: []string{"*"}, Driver: "raw_exec", MinIsolation: "user",
			Constraints: []Constraint{{"${attr.kernel.name}", "=", "darwin"}, {"${attr.cpu.arch}", "=", "arm64"}, tiers,
				{"${meta.buildfleet_isolation}", "set_contains_any", "user,container,vm"}},
		}, ""},
		{"go arch name", Pool{Name: "x", Platform: "linux-amd64", Tier: "quick"}, Placement{}, `unknown arch "amd64"`},
		{"bad driver", Pool{Name: "x", Platform: "linux-x86_64", Tier: "quick", Driver: "podman"}, Placement{}, `driver "podman"`},
		{"bad isolation", Pool{Name: "x", Platform: "linux-x86_64", Tier: "quick", MinIsolation: "strong"}, Placement{}, `min_isolation "strong"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PlacementOf(tt.pool)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.Platform, got.Tier = Platform{}, ""
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestIsolationOrder(t *testing.T) {
	for i, l := range Isolations {
		if IsolationRank(l) != i {
			t.Errorf("rank of %s = %d", l, IsolationRank(l))
		}
	}
	if IsolationRank("root") != -1 || IsolationsFrom("root") != nil {
		t.Error("unknown level ranked")
	}
	if got := strings.Join(IsolationsFrom(IsolationUser), ","); got != "user,container,vm" {
		t.Errorf("from user: %s", got)
	}
	if DriverIsolation(DriverRawExec) != IsolationUser || DriverIsolation(DriverDocker) != IsolationContainer {
		t.Error("driver isolation")
	}
}

func TestValidatePlacementKeys(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantKey string
	}{
		{"docker on macos", func(c *Config) { c.Pools[0].Platform = "macos-arm64"; c.Pools[0].Driver = "docker" }, "pools[0].driver"},
		{"unknown driver", func(c *Config) { c.Pools[0].Driver = "qemu" }, "pools[0].driver"},
		{"unknown isolation", func(c *Config) { c.Pools[1].MinIsolation = "jail" }, "pools[1].min_isolation"},
		{"bad node pool", func(c *Config) { c.Pools[0].NodePool = "a b" }, "pools[0].node_pool"},
		{"all node pool", func(c *Config) { c.Pools[0].NodePool = "all" }, "pools[0].node_pool"},
		{"bad datacenter", func(c *Config) { c.Pools[0].Datacenters = []string{"dc 1"} }, "pools[0].datacenters"},
		{"cert without key", func(c *Config) { c.Nomad.Address = "https://n:4646"; c.Nomad.ClientCertFile = "c.pem" }, "nomad.client_key_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantKey+":") {
				t.Errorf("error %v, want one for %s", err, tt.wantKey)
			}
		})
	}
	c := valid()
	if c.Pools[0].NodePool != "buildfleet-linux-x86_64" || c.Pools[0].Driver != "raw_exec" || c.Pools[0].MinIsolation != "none" {
		t.Errorf("ApplyDefaults placement: %+v", c.Pools[0])
	}
}
