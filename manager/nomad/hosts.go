package nomad

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/buildfleet/buildfleet/config"
)

// Host is one Nomad client that can serve a pool, as its donor sees it.
type Host struct {
	Name       string
	Datacenter string
	Status     string // initializing, ready, down, disconnected
	Eligible   bool
	Draining   bool
	Running    int // runner allocations of the pool, pending or running
	Slots      int // node_max_allocs; 0 when unlimited or unknown
	LastSeen   time.Time
	NodePool   string
	// Isolation is what the host declares in its buildfleet_isolation
	// meta ("" when it declares nothing).
	Isolation string
	// Placeable is true when Nomad could place the pool's runner on the
	// host now (Placeable); Why says why not.
	Placeable bool
	Why       string
}

// hostsCache keeps node details briefly: the list endpoint lacks the
// attributes and meta a pool is matched on, so each node is read once per
// hostsTTL at most, however often the status page is loaded.
type hostsCache struct {
	mu     sync.Mutex
	at     time.Time
	nodes  []*api.Node
	allocs map[string][]*api.Allocation
}

const hostsTTL = 15 * time.Second

// PoolHosts lists the hosts of a pool, with the pool's runner allocations
// on each and whether Nomad could place the pool's runner there now: the
// nodes of the pool's node pool, and those of its platform and tier that
// are elsewhere (shown, with the reason, because a donor who joined the
// wrong node pool needs to see it).
func (c *Client) PoolHosts(ctx context.Context, pool config.Pool) ([]Host, error) {
	pl, err := config.PlacementOf(pool)
	if err != nil {
		return nil, err
	}
	nodes, allocs, err := c.nodeDetails(ctx)
	if err != nil {
		return nil, err
	}
	prefix := pool.NomadJob + "/dispatch-"
	var out []Host
	for _, n := range nodes {
		samePlatform := n.Attributes["kernel.name"] == pl.Platform.Kernel && n.Attributes["cpu.arch"] == pl.Platform.Arch &&
			hasTier(n.Meta[config.MetaTiers], pool.Tier)
		if n.NodePool != pl.NodePool && !samePlatform {
			continue
		}
		h := Host{
			Name: n.Name, Datacenter: n.Datacenter, Status: n.Status,
			Eligible: n.SchedulingEligibility == api.NodeSchedulingEligible && !n.Drain,
			Draining: n.Drain, Slots: n.NodeMaxAllocs, NodePool: n.NodePool,
			Isolation: n.Meta[config.MetaIsolation],
		}
		h.Placeable, h.Why = Placeable(n, pl)
		if n.StatusUpdatedAt > 0 {
			h.LastSeen = time.Unix(n.StatusUpdatedAt, 0)
		}
		for _, a := range allocs[n.ID] {
			if strings.HasPrefix(a.JobID, prefix) && !a.ServerTerminalStatus() && !a.ClientTerminalStatus() {
				h.Running++
			}
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func hasTier(list, tier string) bool {
	for _, t := range strings.Split(list, ",") {
		if strings.TrimSpace(t) == tier {
			return true
		}
	}
	return false
}

// nodeDetails returns every node with its allocations, from the cache when
// fresh.
func (c *Client) nodeDetails(ctx context.Context) ([]*api.Node, map[string][]*api.Allocation, error) {
	hc := &c.hosts
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if time.Since(hc.at) < hostsTTL && hc.nodes != nil {
		return hc.nodes, hc.allocs, nil
	}
	q := (&api.QueryOptions{}).WithContext(ctx)
	stubs, _, err := c.api.Nodes().List(q)
	if err != nil {
		return nil, nil, fmt.Errorf("listing nomad nodes: %w", err)
	}
	nodes := make([]*api.Node, 0, len(stubs))
	allocs := map[string][]*api.Allocation{}
	for _, s := range stubs {
		n, _, err := c.api.Nodes().Info(s.ID, q)
		if err != nil {
			return nil, nil, fmt.Errorf("reading nomad node %s: %w", s.Name, err)
		}
		as, _, err := c.api.Nodes().Allocations(s.ID, q)
		if err != nil {
			return nil, nil, fmt.Errorf("listing allocations of nomad node %s: %w", s.Name, err)
		}
		nodes = append(nodes, n)
		allocs[s.ID] = as
	}
	hc.nodes, hc.allocs, hc.at = nodes, allocs, time.Now()
	return nodes, allocs, nil
}
