package nomad

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/nomad/api"
)

// nodeNames remembers node names by ID: a node's name does not change,
// and the fleet asks for it at every placement.
type nodeNames struct {
	mu    sync.Mutex
	names map[string]string
}

// NodeName returns the name of the node with this ID (the host a runner
// was placed on), read once and then remembered.
func (c *Client) NodeName(ctx context.Context, id string) (string, error) {
	c.names.mu.Lock()
	if n, ok := c.names.names[id]; ok {
		c.names.mu.Unlock()
		return n, nil
	}
	c.names.mu.Unlock()
	n, _, err := c.api.Nodes().Info(id, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("reading nomad node %s: %w", id, err)
	}
	c.names.mu.Lock()
	defer c.names.mu.Unlock()
	if c.names.names == nil {
		c.names.names = map[string]string{}
	}
	c.names.names[id] = n.Name
	return n.Name, nil
}

// Node is one Nomad client as the fleet's health tracker and the hosts
// page see it: identity, state, the meta a donor set, and its load.
type Node struct {
	ID         string
	Name       string
	Datacenter string
	NodePool   string
	// Status is Nomad's: initializing, ready, down, disconnected.
	Status string
	// Eligible is Nomad's scheduling eligibility; Draining a drain in
	// progress.
	Eligible bool
	Draining bool
	// Slots is node_max_allocs (0: unlimited or unknown); Used the
	// allocations not finished on the node (Nomad counts them all).
	Slots, Used int
	// Kernel and Arch are the fingerprinted kernel.name and cpu.arch.
	Kernel, Arch string
	Meta         map[string]string
	// StatusUpdatedAt is when Nomad last changed the node's status.
	StatusUpdatedAt time.Time
}

// Nodes lists every client node with its meta and load, from the same
// short cache as PoolHosts.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	nodes, allocs, err := c.nodeDetails(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Node, 0, len(nodes))
	for _, n := range nodes {
		x := Node{ID: n.ID, Name: n.Name, Datacenter: n.Datacenter, NodePool: n.NodePool, Status: n.Status,
			Eligible: n.SchedulingEligibility == api.NodeSchedulingEligible, Draining: n.Drain,
			Slots: n.NodeMaxAllocs, Kernel: n.Attributes["kernel.name"], Arch: n.Attributes["cpu.arch"], Meta: n.Meta}
		if n.StatusUpdatedAt > 0 {
			x.StatusUpdatedAt = time.Unix(n.StatusUpdatedAt, 0)
		}
		for _, a := range allocs[n.ID] {
			if !a.ServerTerminalStatus() && !a.ClientTerminalStatus() {
				x.Used++
			}
		}
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// SetEligibility takes a node out of scheduling (false) or back in. The
// running allocations stay; only new placements are affected. It needs a
// token with node:write.
func (c *Client) SetEligibility(ctx context.Context, nodeID string, eligible bool) error {
	if _, err := c.api.Nodes().ToggleEligibility(nodeID, eligible, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("setting eligibility of nomad node %s: %w", nodeID, err)
	}
	c.forgetNodes()
	return nil
}

// forgetNodes drops the node cache, so that a change made here shows at
// once.
func (c *Client) forgetNodes() {
	c.hosts.mu.Lock()
	c.hosts.nodes = nil
	c.hosts.mu.Unlock()
}
