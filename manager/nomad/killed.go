package nomad

import (
	"context"

	"github.com/hashicorp/nomad/api"
)

// RunnerKilled says why a runner's child was ended by Nomad or its host
// rather than by the runner itself, or "" when the runner exited of its
// own accord; running reports a task that has not terminated yet and got
// no kill so far (ask again once it ended: a kill may still be on its way
// from the client). A runner interrupted mid-job (an agent that
// stops, a lost host, a Nomad that lost its state and so stops what it no
// longer knows) reports its job failed — GitHub's runner says "the runner
// has received a shutdown signal" — just before it exits: this tells that
// failure from the build's own.
//
// Killed means: Nomad no longer knows the child; its allocation failed or
// was lost; or its task got a kill before it terminated (our own stop of a
// finished runner comes after the task terminated).
func (c *Client) RunnerKilled(ctx context.Context, dispatchedJobID string) (why string, running bool, err error) {
	q := (&api.QueryOptions{Namespace: c.ns}).WithContext(ctx)
	if _, _, err := c.api.Jobs().Info(dispatchedJobID, q); statusCode(err) == 404 {
		return "its Nomad job is gone (Nomad lost it)", false, nil
	} else if err != nil {
		return "", false, wrap("reading runner job "+dispatchedJobID, err)
	}
	allocs, _, err := c.api.Jobs().Allocations(dispatchedJobID, true, q)
	if err != nil {
		return "", false, wrap("reading the allocations of runner job "+dispatchedJobID, err)
	}
	for _, a := range allocs {
		switch a.ClientStatus {
		case api.AllocClientStatusLost, api.AllocClientStatusUnknown:
			return "host " + shortID(a.NodeID) + " disconnected or went down", false, nil
		case api.AllocClientStatusFailed:
			return taskFailure(a.TaskStates), false, nil
		case api.AllocClientStatusPending, api.AllocClientStatusRunning:
			running = true
		}
		for name, ts := range a.TaskStates {
			if ts == nil {
				continue
			}
			for _, ev := range ts.Events {
				if ev.Type == api.TaskTerminated {
					break // exited first: anything after is our cleanup
				}
				if ev.Type == api.TaskKilling || ev.Type == api.TaskKilled {
					msg := ev.DisplayMessage
					if msg == "" {
						msg = ev.Type
					}
					return "task " + name + " was killed by its host: " + msg, false, nil
				}
			}
		}
	}
	return "", running, nil
}
