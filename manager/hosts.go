package manager

import (
	"context"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/status"
)

// hostsOf shows donors their hosts on the status page: the Nomad nodes that
// match each pool, with its runners on them.
type hostsOf struct{ c *nomad.Client }

var _ status.Fleet = hostsOf{}

func (h hostsOf) Hosts(ctx context.Context, pool config.Pool) ([]status.Host, error) {
	hs, err := h.c.PoolHosts(ctx, pool)
	if err != nil {
		return nil, err
	}
	out := make([]status.Host, len(hs))
	for i, x := range hs {
		out[i] = status.Host{
			Name: x.Name, Datacenter: x.Datacenter, Status: x.Status, Eligible: x.Eligible,
			Draining: x.Draining, Running: x.Running, Slots: x.Slots, LastSeen: x.LastSeen,
			NodePool: x.NodePool, Isolation: x.Isolation, Placeable: x.Placeable, Why: x.Why,
		}
	}
	return out, nil
}
