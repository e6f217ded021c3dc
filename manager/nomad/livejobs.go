package nomad

import (
	"context"

	"github.com/hashicorp/nomad/api"
)

// LiveRunner is a runner child that Nomad has not finished with.
type LiveRunner struct {
	DispatchedJobID string
	RunnerName      string
	Pool            string
}

// LiveRunners lists the children of buildfleet's pool jobs that are not
// dead (pending or running), for the fleet's orphan sweep.
func (c *Client) LiveRunners(ctx context.Context) ([]LiveRunner, error) {
	q := (&api.QueryOptions{Namespace: c.ns, Filter: `ParentID != "" and Status != "dead"`}).WithContext(ctx)
	jobs, _, err := c.api.Jobs().ListOptions(&api.JobListOptions{Fields: &api.JobListFields{Meta: true}}, q)
	if err != nil {
		return nil, wrap("listing runner jobs", err)
	}
	var out []LiveRunner
	for _, j := range jobs {
		if j.Meta[MetaPool] == "" || j.Stop {
			continue
		}
		out = append(out, LiveRunner{DispatchedJobID: j.ID, RunnerName: j.Meta[MetaRunnerName], Pool: j.Meta[MetaPool]})
	}
	return out, nil
}
