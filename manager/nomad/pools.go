package nomad

import (
	"context"
	"fmt"

	"github.com/hashicorp/nomad/api"
)

// PoolChange says what RegisterPool changed.
type PoolChange struct {
	JobID string
	// Job is "added", "edited" or "unchanged" (from Nomad's plan diff).
	Job string
	// Policy is "added", "edited", "unchanged" or "skipped (ACLs disabled)"
	// for the job's variable policy.
	Policy string
}

// RunnerPolicyName names the variable policy attached to a pool job. Policy
// names allow only letters, digits and '-' (at most 128), job IDs more.
func RunnerPolicyName(jobID string) string {
	name := []byte("buildfleet-pool-" + jobID)
	for i, b := range name {
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-') {
			name[i] = '-'
		}
	}
	return string(name[:min(len(name), 128)])
}

// RunnerPolicy is the ACL policy attached to a pool job: its tasks' workload
// identity (for a dispatched child, the parent's) may read the runner
// variables of this pool, and nothing else beyond Nomad's implicit
// nomad/jobs/<job> access.
func RunnerPolicy(namespace, jobID string) string {
	return fmt.Sprintf(`namespace %q {
  variables {
    path %q {
      capabilities = ["read"]
    }
  }
}
`, namespace, RunnerVarPrefix(jobID)+"/*")
}

// RegisterPool registers (or updates) a pool's parameterized job and
// attaches its variable policy. It needs a privileged token: submit-job in
// the namespace and acl:write (a management token); the manager's own token
// has neither on purpose, so operators run it through `buildfleet nomad
// apply`. Updating a parent affects future children only.
func (c *Client) RegisterPool(ctx context.Context, job *api.Job) (PoolChange, error) {
	id := *job.ID
	ns := c.ns
	if job.Namespace != nil && *job.Namespace != "" {
		ns = *job.Namespace
	}
	ch := PoolChange{JobID: id}
	w := (&api.WriteOptions{Namespace: ns}).WithContext(ctx)

	plan, _, err := c.api.Jobs().PlanOpts(job, &api.PlanOptions{Diff: true}, w)
	if err != nil {
		return ch, wrap("planning pool job "+id, err)
	}
	ch.Job = "unchanged"
	if plan.Diff != nil {
		switch plan.Diff.Type {
		case "Added":
			ch.Job = "added"
		case "Edited":
			ch.Job = "edited"
		}
	}
	if ch.Job != "unchanged" {
		if _, _, err := c.api.Jobs().Register(job, w); err != nil {
			return ch, wrap("registering pool job "+id, err)
		}
	}

	pol := &api.ACLPolicy{
		Name:        RunnerPolicyName(id),
		Description: "buildfleet: runners of " + id + " read their JIT config variables",
		Rules:       RunnerPolicy(ns, id),
		JobACL:      &api.JobACL{Namespace: ns, JobID: id},
	}
	q := (&api.QueryOptions{}).WithContext(ctx)
	old, _, err := c.api.ACLPolicies().Info(pol.Name, q)
	switch code := statusCode(err); {
	case err == nil:
		ch.Policy = "edited"
		if old.Rules == pol.Rules && old.JobACL != nil && *old.JobACL == *pol.JobACL {
			ch.Policy = "unchanged"
			return ch, nil
		}
	case code == 404:
		ch.Policy = "added"
	case code == 400:
		// ACLs disabled (dev agents, the demo): everyone may read variables.
		ch.Policy = "skipped (ACLs disabled)"
		return ch, nil
	default:
		return ch, wrap("reading policy "+pol.Name, err)
	}
	if _, err := c.api.ACLPolicies().Upsert(pol, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return ch, wrap("writing policy "+pol.Name, err)
	}
	return ch, nil
}

// Counts are a pool's children by Nomad job status. Pending includes
// children waiting for a host (blocked); Dead ones are finished or stopped
// and not yet garbage-collected.
type Counts struct {
	Pending, Running, Dead int
}

// Active is what counts against a pool's max_runners.
func (c Counts) Active() int { return c.Pending + c.Running }

// PoolCounts returns the children counts of a pool job (one summary read).
func (c *Client) PoolCounts(ctx context.Context, parentJobID string) (Counts, error) {
	q := (&api.QueryOptions{}).WithContext(ctx)
	s, _, err := c.api.Jobs().Summary(parentJobID, q)
	if err != nil {
		return Counts{}, wrap("summary of "+parentJobID, err)
	}
	if s.Children == nil {
		return Counts{}, nil
	}
	return Counts{
		Pending: int(s.Children.Pending),
		Running: int(s.Children.Running),
		Dead:    int(s.Children.Dead),
	}, nil
}
