package nomad

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/nomad/api"

	"github.com/buildfleet/buildfleet/config"
)

// PoolSpec reads a pool's parameterized job as the operator registered it
// (`buildfleet nomad apply`), without Nomad's bookkeeping fields, as JSON.
// The manager keeps it so that it can register the same job again when a
// Nomad cluster that lost its state answers "parameterized job not found"
// (RestorePool). The job carries no secret: JIT configs live in Variables.
func (c *Client) PoolSpec(ctx context.Context, pool config.Pool) ([]byte, error) {
	id := poolJobID(pool)
	q := (&api.QueryOptions{Namespace: c.ns}).WithContext(ctx)
	j, _, err := c.api.Jobs().Info(id, q)
	if err != nil {
		return nil, wrap("reading pool job "+id, err)
	}
	if !j.IsParameterized() {
		return nil, fmt.Errorf("reading pool job %s: not a parameterized job", id)
	}
	j.Status, j.StatusDescription, j.Stable, j.Version, j.SubmitTime = nil, nil, nil, nil, nil
	j.CreateIndex, j.ModifyIndex, j.JobModifyIndex, j.Stop = nil, nil, nil, nil
	b, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encoding pool job %s: %w", id, err)
	}
	return b, nil
}

// RestorePool registers a pool job kept by PoolSpec again, with its
// namespace and node pool when missing (and the token may create them)
// and its variable policy (skipped when the token may not write ACL policies:
// then the operator's `buildfleet nomad apply` must restore it). It needs
// submit-job, which the manager has for stopping runners.
func (c *Client) RestorePool(ctx context.Context, spec []byte) error {
	var j api.Job
	if err := json.Unmarshal(spec, &j); err != nil {
		return fmt.Errorf("decoding a kept pool job: %w", err)
	}
	if j.ID == nil || !j.IsParameterized() {
		return fmt.Errorf("decoding a kept pool job: no ID or not parameterized")
	}
	// A Nomad that lost its state lost the node pools the operator made
	// too (a client re-creates its own only when it registers again).
	var pools []string
	if j.NodePool != nil {
		pools = append(pools, *j.NodePool)
	}
	if _, err := c.EnsurePrerequisites(ctx, c.ns, pools); err != nil && !IsMissing(err) {
		return err
	}
	w := (&api.WriteOptions{Namespace: c.ns}).WithContext(ctx)
	if _, _, err := c.api.Jobs().Register(&j, w); err != nil {
		return wrap("registering pool job "+*j.ID+" again", err)
	}
	// The policy lets the runners read their JIT configs; with ACLs on and
	// no acl:write the runners wait until an operator applies it.
	if _, err := c.RegisterPool(ctx, &j); err != nil && !errors.Is(err, ErrForbidden) {
		return err
	}
	return nil
}
