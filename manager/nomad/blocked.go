package nomad

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/nomad/api"
)

// BlockedReason says in one sentence why a runner waits for a host, from
// Nomad's placement metrics, e.g. `no eligible host: constraint
// ${attr.kernel.name} = freebsd filtered 1 node`. id is an evaluation ID or
// a dispatched child's job ID. It returns "" when nothing is blocked.
//
// A blocked evaluation never times out: Nomad places the runner as soon as
// a matching host appears, becomes eligible or frees capacity, so the
// caller decides how long "waiting for a host" is acceptable.
func (c *Client) BlockedReason(ctx context.Context, id string) (string, error) {
	q := (&api.QueryOptions{Namespace: c.ns}).WithContext(ctx)
	if strings.Contains(id, "/") {
		evals, _, err := c.api.Jobs().Evaluations(id, q)
		if err != nil {
			return "", wrap("evaluations of "+id, err)
		}
		var blocked *api.Evaluation
		for _, e := range evals {
			if e.Status == api.EvalStatusBlocked && (blocked == nil || e.ModifyIndex > blocked.ModifyIndex) {
				blocked = e
			}
		}
		if blocked == nil {
			return "", nil
		}
		return describeFailures(blocked.FailedTGAllocs), nil
	}
	e, _, err := c.api.Evaluations().Info(id, q)
	if err != nil {
		return "", wrap("evaluation "+id, err)
	}
	if len(e.FailedTGAllocs) == 0 && e.BlockedEval != "" {
		if b, _, err := c.api.Evaluations().Info(e.BlockedEval, q); err == nil {
			e = b
		}
	}
	return describeFailures(e.FailedTGAllocs), nil
}

// describeFailures turns the failed task groups' metrics into a sentence.
func describeFailures(failed map[string]*api.AllocationMetric) string {
	if len(failed) == 0 {
		return ""
	}
	groups := make([]string, 0, len(failed))
	for g := range failed {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	var out []string
	for _, g := range groups {
		if s := describeMetric(failed[g]); s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, "; ")
}

func describeMetric(m *api.AllocationMetric) string {
	if m == nil {
		return ""
	}
	pool := m.NodePool
	if pool == "" {
		pool = "default"
	}
	if m.NodesInPool == 0 {
		// Ineligible, draining and down hosts are not counted in the pool.
		return fmt.Sprintf("no eligible host: node pool %q has no ready, eligible host", pool)
	}
	if m.NodesEvaluated == 0 {
		return fmt.Sprintf("no eligible host: none of the %s in node pool %q is ready and eligible (in the job's datacenters)",
			plural(m.NodesInPool, "host"), pool)
	}
	var filtered, exhausted []string
	for _, k := range sortedKeys(m.ConstraintFiltered) {
		filtered = append(filtered, fmt.Sprintf("constraint %s filtered %s", k, plural(m.ConstraintFiltered[k], "node")))
	}
	for _, k := range sortedKeys(m.ClassFiltered) {
		filtered = append(filtered, fmt.Sprintf("node class %q filtered %s", k, plural(m.ClassFiltered[k], "node")))
	}
	if len(filtered) == 0 && m.NodesFiltered > 0 {
		filtered = append(filtered, fmt.Sprintf("%s filtered out", plural(m.NodesFiltered, "node")))
	}
	for _, k := range sortedKeys(m.DimensionExhausted) {
		exhausted = append(exhausted, fmt.Sprintf("%s on %s", k, plural(m.DimensionExhausted[k], "node")))
	}
	if len(exhausted) == 0 && m.NodesExhausted > 0 {
		exhausted = append(exhausted, fmt.Sprintf("%s full", plural(m.NodesExhausted, "node")))
	}
	var parts []string
	if len(filtered) > 0 {
		parts = append(parts, "no eligible host: "+strings.Join(filtered, ", "))
	}
	if len(exhausted) > 0 {
		parts = append(parts, "no free capacity: "+strings.Join(exhausted, ", "))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("no host available (%s evaluated)", plural(m.NodesEvaluated, "node"))
	}
	return strings.Join(parts, "; ")
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
