package config

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Placement is where a pool's runners may run, in Nomad's terms. It is the
// one source of truth for both sides of a placement: `buildfleet nomad
// render|apply` writes it into the pool's job (node pool, datacenters,
// constraints, task driver), and `buildfleet donor config` writes the same
// node pool, node meta and driver into a donor's client configuration, so
// that a host configured for a pool is one Nomad can place its runners on.
type Placement struct {
	// NodePool is the Nomad node pool of the pool's hosts.
	NodePool string
	// Datacenters the runners may use (Nomad globs; "*" is any).
	Datacenters []string
	// Platform is the pool's platform in its canonical spelling.
	Platform Platform
	// Tier the runners build; hosts list it in MetaTiers.
	Tier string
	// Driver is the task driver of the runner task.
	Driver string
	// MinIsolation is the lowest isolation a host must declare in
	// MetaIsolation.
	MinIsolation string
	// Constraints are the job's constraints, in order.
	Constraints []Constraint
}

// Constraint is one Nomad job constraint (LTarget Operand RTarget).
type Constraint struct {
	Attribute, Operator, Value string
}

// Node meta keys written by `buildfleet donor config` and read by the
// pool jobs' constraints and the status page.
const (
	// MetaTiers lists the tiers a host builds, comma-separated.
	MetaTiers = "buildfleet_tiers"
	// MetaPlatform is the host's platform, canonical spelling.
	MetaPlatform = "buildfleet_platform"
	// MetaIsolation is how a runner is kept from the host and from the
	// other runners on it: one of Isolations.
	MetaIsolation = "buildfleet_isolation"
	// MetaOwner and MetaContact say who lends the host.
	MetaOwner   = "buildfleet_owner"
	MetaContact = "buildfleet_contact"
)

// Task drivers a pool's runners may use.
const (
	DriverRawExec = "raw_exec"
	DriverExec    = "exec"
	DriverDocker  = "docker"
)

// Drivers lists the supported task drivers.
var Drivers = []string{DriverRawExec, DriverExec, DriverDocker}

// Isolation levels, weakest first: none (the runner shares the agent's
// user), user (an unprivileged user of its own, no group 0), container
// (its own container or chroot with namespaces) and vm (the host is a
// virtual machine that serves builds only).
const (
	IsolationNone      = "none"
	IsolationUser      = "user"
	IsolationContainer = "container"
	IsolationVM        = "vm"
)

// Isolations lists the isolation levels, weakest first.
var Isolations = []string{IsolationNone, IsolationUser, IsolationContainer, IsolationVM}

// IsolationRank orders isolation levels; -1 for an unknown one.
func IsolationRank(level string) int { return slices.Index(Isolations, level) }

// IsolationsFrom returns the levels at least as strong as min.
func IsolationsFrom(min string) []string {
	i := IsolationRank(min)
	if i < 0 {
		return nil
	}
	return Isolations[i:]
}

// DriverIsolation is the isolation a driver gives a runner on its own:
// raw_exec a user of its own (the bootstrap drops to it), exec and docker
// a container. A donor may declare more (vm), never less.
func DriverIsolation(driver string) string {
	switch driver {
	case DriverExec, DriverDocker:
		return IsolationContainer
	case DriverRawExec:
		return IsolationUser
	}
	return IsolationNone
}

// DefaultNodePool is the node pool of a platform's hosts when the pool
// config names none: buildfleet-<canonical platform>.
func DefaultNodePool(p Platform) string { return "buildfleet-" + p.Name }

// Tiers known to buildfleet: the ones its workflows build.
var KnownTiers = []string{TierQuick, TierRefleak}

// PlacementOf derives a pool's placement from its config entry. The
// defaults it applies (node pool buildfleet-<platform>, all datacenters,
// raw_exec, isolation none) are the same ApplyDefaults writes, so a pool
// built without ApplyDefaults places the same way.
func PlacementOf(p Pool) (Placement, error) {
	plat, err := ParsePlatform(p.Platform)
	if err != nil {
		return Placement{}, fmt.Errorf("pool %s: platform: %w", p.Name, err)
	}
	if p.Tier == "" {
		return Placement{}, fmt.Errorf("pool %s: no tier", p.Name)
	}
	pl := Placement{
		NodePool: p.NodePool, Datacenters: p.Datacenters, Platform: plat, Tier: p.Tier,
		Driver: p.Driver, MinIsolation: p.MinIsolation,
	}
	if pl.NodePool == "" {
		pl.NodePool = DefaultNodePool(plat)
	}
	if len(pl.Datacenters) == 0 {
		pl.Datacenters = []string{"*"}
	}
	if pl.Driver == "" {
		pl.Driver = DriverRawExec
	}
	if pl.MinIsolation == "" {
		pl.MinIsolation = IsolationNone
	}
	if !slices.Contains(Drivers, pl.Driver) {
		return Placement{}, fmt.Errorf("pool %s: driver %q is not one of %s", p.Name, pl.Driver, strings.Join(Drivers, ", "))
	}
	if IsolationRank(pl.MinIsolation) < 0 {
		return Placement{}, fmt.Errorf("pool %s: min_isolation %q is not one of %s", p.Name, pl.MinIsolation, strings.Join(Isolations, ", "))
	}
	pl.Constraints = []Constraint{
		{"${attr.kernel.name}", "=", plat.Kernel},
		{"${attr.cpu.arch}", "=", plat.Arch},
		{"${meta." + MetaTiers + "}", "set_contains", p.Tier},
	}
	if pl.MinIsolation != IsolationNone {
		// A host without the meta key, or with a weaker level, is refused.
		pl.Constraints = append(pl.Constraints, Constraint{
			"${meta." + MetaIsolation + "}", "set_contains_any", strings.Join(IsolationsFrom(pl.MinIsolation), ","),
		})
	}
	return pl, nil
}

// InDatacenter reports whether a node's datacenter matches one of the
// placement's datacenter globs, as Nomad matches them.
func (pl Placement) InDatacenter(dc string) bool {
	for _, g := range pl.Datacenters {
		if ok, _ := path.Match(g, dc); ok {
			return true
		}
	}
	return false
}
