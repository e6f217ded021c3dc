package nomad

import (
	"testing"

	"github.com/hashicorp/nomad/api"
)

func TestDescribeFailures(t *testing.T) {
	tests := []struct {
		name string
		m    *api.AllocationMetric
		want string
	}{
		{"constraint", &api.AllocationMetric{NodesInPool: 1, NodesEvaluated: 1, NodesFiltered: 1,
			ConstraintFiltered: map[string]int{"${attr.kernel.name} = freebsd": 1}},
			"no eligible host: constraint ${attr.kernel.name} = freebsd filtered 1 node"},
		{"empty pool", &api.AllocationMetric{NodePool: "donors"},
			`no eligible host: node pool "donors" has no ready, eligible host`},
		{"none evaluated", &api.AllocationMetric{NodesInPool: 3},
			`no eligible host: none of the 3 hosts in node pool "default" is ready and eligible (in the job's datacenters)`},
		{"full", &api.AllocationMetric{NodesInPool: 2, NodesEvaluated: 2, NodesExhausted: 2,
			DimensionExhausted: map[string]int{"max allocation exceeded": 1, "memory": 1}},
			"no free capacity: max allocation exceeded on 1 node, memory on 1 node"},
		{"both", &api.AllocationMetric{NodesInPool: 2, NodesEvaluated: 2, NodesFiltered: 1, NodesExhausted: 1,
			ConstraintFiltered: map[string]int{"${meta.buildfleet_tiers} set_contains refleak": 1}},
			"no eligible host: constraint ${meta.buildfleet_tiers} set_contains refleak filtered 1 node; no free capacity: 1 node full"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeFailures(map[string]*api.AllocationMetric{"runner": tc.m}); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	if got := describeFailures(nil); got != "" {
		t.Errorf("no failures: %q", got)
	}
}
