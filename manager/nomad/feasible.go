package nomad

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/buildfleet/buildfleet/config"
)

// Placeable says whether Nomad's scheduler could place a runner of the
// placement on node now, and if not, the first reason why, in the order
// the scheduler filters: node pool, datacenter, status, eligibility,
// driver, then the job's constraints (the same config.PlacementOf list the
// job is rendered with). Free capacity is not checked: a busy host still
// serves its pool, the runner waits for a slot.
func Placeable(n *api.Node, pl config.Placement) (bool, string) {
	switch {
	case pl.NodePool != "all" && n.NodePool != pl.NodePool:
		return false, fmt.Sprintf("in node pool %s, the pool's runners go to %s", n.NodePool, pl.NodePool)
	case !pl.InDatacenter(n.Datacenter):
		return false, fmt.Sprintf("in datacenter %s, the pool's runners go to %s", n.Datacenter, strings.Join(pl.Datacenters, ", "))
	case n.Status != api.NodeStatusReady:
		return false, "status " + n.Status
	case n.Drain:
		return false, "draining"
	case n.SchedulingEligibility != api.NodeSchedulingEligible:
		return false, "paused (ineligible)"
	}
	d := n.Drivers[pl.Driver]
	if d == nil || !d.Detected || !d.Healthy {
		return false, fmt.Sprintf("driver %s not healthy", pl.Driver)
	}
	for _, c := range pl.Constraints {
		if !constraintHolds(n, c) {
			return false, fmt.Sprintf("constraint %s %s %s not met (%s)", c.Attribute, c.Operator, c.Value, valueOrUnset(n, c.Attribute))
		}
	}
	return true, ""
}

// nodeValue resolves a constraint target the way Nomad does for the
// targets buildfleet uses: ${attr.*}, ${meta.*} and ${node.*}.
func nodeValue(n *api.Node, target string) (string, bool) {
	t, ok := strings.CutPrefix(target, "${")
	if !ok {
		return target, true
	}
	t = strings.TrimSuffix(t, "}")
	switch {
	case strings.HasPrefix(t, "attr."):
		v, ok := n.Attributes[strings.TrimPrefix(t, "attr.")]
		return v, ok
	case strings.HasPrefix(t, "meta."):
		v, ok := n.Meta[strings.TrimPrefix(t, "meta.")]
		return v, ok
	}
	switch t {
	case "node.unique.id":
		return n.ID, true
	case "node.unique.name":
		return n.Name, true
	case "node.datacenter":
		return n.Datacenter, true
	case "node.class":
		return n.NodeClass, true
	case "node.pool":
		return n.NodePool, true
	}
	return "", false
}

func valueOrUnset(n *api.Node, target string) string {
	if v, ok := nodeValue(n, target); ok {
		return fmt.Sprintf("%q", v)
	}
	return "unset"
}

// constraintHolds evaluates one constraint as Nomad's feasibility checker
// does for the operators buildfleet emits (and the common others); an
// operator it does not know is not met, so a host is never shown as
// serving a pool it might not.
func constraintHolds(n *api.Node, c config.Constraint) bool {
	v, ok := nodeValue(n, c.Attribute)
	switch c.Operator {
	case "is_set":
		return ok
	case "is_not_set":
		return !ok
	}
	if !ok {
		return false
	}
	switch c.Operator {
	case "", "=", "==", "is":
		return v == c.Value
	case "!=", "not":
		return v != c.Value
	case "set_contains", "set_contains_all":
		have := splitSet(v)
		for _, want := range splitSet(c.Value) {
			if !slices.Contains(have, want) {
				return false
			}
		}
		return true
	case "set_contains_any":
		have := splitSet(v)
		for _, want := range splitSet(c.Value) {
			if slices.Contains(have, want) {
				return true
			}
		}
		return false
	case "regexp":
		re, err := regexp.Compile(c.Value)
		return err == nil && re.MatchString(v)
	}
	return false
}

// splitSet splits a comma list and trims its items, as Nomad does.
func splitSet(s string) []string {
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}
