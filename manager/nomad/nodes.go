package nomad

import (
	"context"
	"fmt"
	"sync"

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
