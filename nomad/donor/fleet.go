package donor

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/buildfleet/buildfleet/config"
)

// ForFleet fits o to a fleet config: the host serves the pools of its
// platform whose tier it lists, so it takes their node pool and driver
// (from config.PlacementOf, as the pools' jobs do) where o leaves them
// empty, and every value it sets itself must agree with those pools: the
// platform and tiers must be ones a pool serves, the node pool and driver
// the pools', the datacenter one the pools may use, and the declared
// isolation at least each pool's min_isolation. Errors name the flag.
func (o Options) ForFleet(c config.Config) (Options, error) {
	plat, err := config.ParsePlatform(o.Platform)
	if err != nil {
		return o, nil // Validate names the flag
	}
	var platforms []string
	var mine []config.Pool
	o.fleetTiers = []string{}
	for _, p := range c.Pools {
		pp, err := config.ParsePlatform(p.Platform)
		if err != nil {
			continue
		}
		if !slices.Contains(platforms, pp.Name) {
			platforms = append(platforms, pp.Name)
		}
		if pp.Name != plat.Name {
			continue
		}
		if !slices.Contains(o.fleetTiers, p.Tier) {
			o.fleetTiers = append(o.fleetTiers, p.Tier)
		}
		if slices.Contains(o.Tiers, p.Tier) {
			mine = append(mine, p)
		}
	}
	if len(o.fleetTiers) == 0 {
		return o, fmt.Errorf("--platform: no pool of the fleet config builds on %s (platforms: %s)", plat.Name, strings.Join(platforms, ", "))
	}
	if len(mine) == 0 {
		return o, nil // Validate refuses the tiers, naming the known ones
	}

	var errs []error
	badf := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	first, err := config.PlacementOf(mine[0])
	if err != nil {
		return o, err
	}
	if o.NodePool == "" {
		o.NodePool = first.NodePool
	}
	if o.Driver == "" {
		o.Driver = first.Driver
	}
	o2 := o.withDefaults()
	for _, p := range mine {
		pl, err := config.PlacementOf(p)
		if err != nil {
			return o, err
		}
		if pl.NodePool != o2.NodePool {
			badf("node-pool", "pool %s places its runners in node pool %q, not %q; a host is in one node pool, so list only tiers whose pools share one", p.Name, pl.NodePool, o2.NodePool)
		}
		if pl.Driver != o2.Driver {
			badf("driver", "pool %s runs its runners with %s, not %s", p.Name, pl.Driver, o2.Driver)
		}
		if !pl.InDatacenter(o2.Datacenter) {
			badf("datacenter", "pool %s places its runners in datacenters %s, not %s", p.Name, strings.Join(pl.Datacenters, ", "), o2.Datacenter)
		}
		if config.IsolationRank(o2.Isolation) >= 0 && config.IsolationRank(o2.Isolation) < config.IsolationRank(pl.MinIsolation) {
			badf("isolation", "pool %s needs min_isolation %s; this host declares %s", p.Name, pl.MinIsolation, o2.Isolation)
		}
	}
	return o, errors.Join(errs...)
}
