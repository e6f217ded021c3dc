package nomadtest

import "fmt"

// RestartLosingState stops the agent and starts it again on the same
// ports with an empty data dir: a cluster that lost its state (jobs,
// allocations, variables, ACLs). Clients that kept the address reconnect
// to a Nomad that knows nothing of what they dispatched.
func (a *Agent) RestartLosingState() error {
	if err := a.Stop(); err != nil {
		return fmt.Errorf("stopping the agent: %w", err)
	}
	b, err := startOn(a.bin, a.opts, a.ports)
	if err != nil {
		return fmt.Errorf("starting the agent again: %w", err)
	}
	a.Token, a.Client, a.DataDir, a.NodeID = b.Token, b.Client, b.DataDir, b.NodeID
	a.cmd, a.logs, a.done = b.cmd, b.logs, b.done
	return nil
}
