package nomad

import (
	"context"
	"fmt"
	"regexp"
	"strconv"

	"github.com/hashicorp/nomad/api"

	"github.com/buildfleet/buildfleet/config"
)

// Runner is one ephemeral runner to start for one GitHub job.
type Runner struct {
	// Name is the runner's unique name (GitHub's and the variable's):
	// letters, digits, '-' and '_' only, at most 64.
	Name string
	// GitHubJobID is the workflow job the runner is for.
	GitHubJobID int64
	// Attempt counts runners started for the same GitHub job, from 1; a
	// replacement after a failed allocation is a new attempt (and a new
	// idempotency token, name and JIT config).
	Attempt int
	// JITConfig is the runner's single-use configuration. It goes into a
	// Nomad Variable only, never into the job.
	JITConfig config.Secret
	// Package is the runner archive to download and its SHA-256, passed
	// in dispatch meta; empty when the pool's command brings its runner.
	Package Package
}

// Package is a runner archive a runner downloads.
type Package struct {
	URL, SHA256, Version string
}

var runnerNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// IdempotencyToken is the dispatch token of a runner: the same GitHub job
// and attempt dispatch at most one child (within Nomad's limits: see
// DispatchRunner).
func IdempotencyToken(githubJobID int64, attempt int) string {
	return fmt.Sprintf("gh-%d-a%d", githubJobID, attempt)
}

// RunnerSecretPath is the Nomad Variable holding a runner's JIT config
// (item "jit").
func RunnerSecretPath(parentJobID, runnerName string) string {
	return RunnerVarPrefix(parentJobID) + "/" + runnerName
}

func poolJobID(pool config.Pool) string {
	if pool.NomadJob != "" {
		return pool.NomadJob
	}
	return "runner-" + pool.Name
}

// DispatchRunner starts one runner on a pool: it writes the JIT config to
// the runner's variable, then dispatches a child of the pool job with meta
// runner_name, github_job_id and attempt and an idempotency token derived
// from the GitHub job id and attempt. It returns the child's job ID.
//
// Retrying after an error is safe: the variable write is idempotent and
// the token makes Nomad return the existing child. Two caveats of Nomad
// 1.10.5 make the manager's own record (store it before dispatching) the
// real guard against a duplicate: two concurrent dispatches with the same
// token can both succeed (hashicorp/nomad#26690, fixed in 1.11), and a
// garbage-collected child no longer matches its token.
//
// On error the variable may remain; call DeleteRunnerSecret when giving up.
func (c *Client) DispatchRunner(ctx context.Context, pool config.Pool, r Runner) (string, error) {
	if err := c.WriteRunnerSecret(ctx, pool, r); err != nil {
		return "", err
	}
	return c.DispatchChild(ctx, pool, r)
}

// WriteRunnerSecret writes a runner's JIT config to its Nomad Variable,
// where only its own task's template reads it. The task waits for it: a
// child may be dispatched first, and the secret written while Nomad places
// the allocation (checked on a dev agent: the task did not start before
// the variable existed, and rendered it once written).
func (c *Client) WriteRunnerSecret(ctx context.Context, pool config.Pool, r Runner) error {
	if !runnerNameRE.MatchString(r.Name) {
		return fmt.Errorf("writing JIT config of runner %q: name must match %s", r.Name, runnerNameRE)
	}
	if r.JITConfig == "" {
		return fmt.Errorf("writing JIT config of runner %s: empty JIT config", r.Name)
	}
	w := (&api.WriteOptions{Namespace: c.ns}).WithContext(ctx)
	v := &api.Variable{
		Namespace: c.ns,
		Path:      RunnerSecretPath(poolJobID(pool), r.Name),
		Items:     api.VariableItems{"jit": r.JITConfig.Reveal()},
	}
	if _, _, err := c.api.Variables().Create(v, w); err != nil {
		return wrap("writing JIT config of runner "+r.Name, err)
	}
	return nil
}

// DispatchChild dispatches a runner's child of its pool's parameterized
// job, with an idempotency token derived from the GitHub job and attempt.
// It carries no secret; the task starts once WriteRunnerSecret wrote one.
func (c *Client) DispatchChild(ctx context.Context, pool config.Pool, r Runner) (string, error) {
	if !runnerNameRE.MatchString(r.Name) {
		return "", fmt.Errorf("dispatching runner %q: name must match %s", r.Name, runnerNameRE)
	}
	attempt := r.Attempt
	if attempt < 1 {
		attempt = 1
	}
	parent := poolJobID(pool)
	meta := map[string]string{
		MetaRunnerName:  r.Name,
		MetaGitHubJobID: strconv.FormatInt(r.GitHubJobID, 10),
		MetaAttempt:     strconv.Itoa(attempt),
	}
	if r.Package.URL != "" {
		meta[MetaRunnerURL], meta[MetaRunnerSHA256], meta[MetaRunnerVersion] = r.Package.URL, r.Package.SHA256, r.Package.Version
	}
	dw := (&api.WriteOptions{Namespace: c.ns, IdempotencyToken: IdempotencyToken(r.GitHubJobID, attempt)}).WithContext(ctx)
	prefix := fmt.Sprintf("gh%d-a%d", r.GitHubJobID, attempt)
	resp, _, err := c.api.Jobs().Dispatch(parent, meta, nil, prefix, dw)
	if err != nil {
		what := fmt.Sprintf("dispatching runner %s on %s", r.Name, parent)
		// Nomad answers a missing parent with a 500; ask whether the pool
		// job exists, so that callers can tell (ErrNotFound) and register
		// it again rather than retry for ever.
		q := (&api.QueryOptions{Namespace: c.ns}).WithContext(ctx)
		if _, _, ierr := c.api.Jobs().Info(parent, q); statusCode(ierr) == 404 {
			return "", fmt.Errorf("%s: pool job %w: %v", what, ErrNotFound, err)
		}
		return "", wrap(what, err)
	}
	return resp.DispatchedJobID, nil
}

// StopRunner stops a runner's child job, so a pending child never gets
// placed and a running one gets kill_timeout to finish. It uses Deregister,
// never an allocation stop: an allocation stop migrates, i.e. places a
// replacement that would reuse the JIT config. Needs submit-job. A child
// already gone is not an error.
//
// A child that was never placed is purged. A child with an allocation is
// only stopped, and Nomad's garbage collector removes it later: a node
// drain completes when the drainer sees the node's last batch allocation
// end, and it ignores the allocations of a purged job, so purging the child
// of a build that runs on a draining host would leave that drain (and an
// agent stopping with drain_on_shutdown) waiting for its deadline.
func (c *Client) StopRunner(ctx context.Context, dispatchedJobID string) error {
	q := (&api.QueryOptions{Namespace: c.ns}).WithContext(ctx)
	allocs, _, err := c.api.Jobs().Allocations(dispatchedJobID, true, q)
	if statusCode(err) == 404 {
		return nil
	}
	if err != nil {
		return wrap("stopping runner job "+dispatchedJobID, err)
	}
	w := (&api.WriteOptions{Namespace: c.ns}).WithContext(ctx)
	_, _, err = c.api.Jobs().Deregister(dispatchedJobID, len(allocs) == 0, w)
	if statusCode(err) == 404 {
		return nil
	}
	return wrap("stopping runner job "+dispatchedJobID, err)
}

// DeleteRunnerSecret deletes a runner's JIT config variable. Call it as soon
// as the runner is running (the template has rendered; its change_mode is
// noop) or finished, stopped or abandoned: it shortens the window in which
// another holder of the pool's workload identity could read it. Deleting
// a missing variable is not an error.
func (c *Client) DeleteRunnerSecret(ctx context.Context, pool config.Pool, runnerName string) error {
	w := (&api.WriteOptions{Namespace: c.ns}).WithContext(ctx)
	_, err := c.api.Variables().Delete(RunnerSecretPath(poolJobID(pool), runnerName), w)
	if statusCode(err) == 404 {
		return nil
	}
	return wrap("deleting JIT config of runner "+runnerName, err)
}
