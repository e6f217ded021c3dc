package github

import (
	"context"
	"fmt"

	gh "github.com/google/go-github/v60/github"

	"github.com/buildfleet/buildfleet/config"
)

// DefaultRunnerGroup is the id of a repository's default runner group; a
// JIT config must name a group, and repository runners have only this one.
const DefaultRunnerGroup = 1

// GenerateJITConfig registers a just-in-time runner on the repository and
// returns its id and its encoded, single-use configuration. The config is
// a secret: it is returned as config.Secret so that logging it by mistake
// prints a mask. A duplicate name is ErrConflict.
func (c *Client) GenerateJITConfig(ctx context.Context, owner, repo, name string, runnerGroupID int64, labels []string) (int64, config.Secret, error) {
	op := fmt.Sprintf("generating JIT config of runner %s on %s/%s", name, owner, repo)
	if runnerGroupID == 0 {
		runnerGroupID = DefaultRunnerGroup
	}
	req, err := c.gh.NewRequest("POST", repoPath(owner, repo)+"actions/runners/generate-jitconfig",
		&gh.GenerateJITConfigRequest{Name: name, RunnerGroupID: runnerGroupID, Labels: labels})
	if err != nil {
		return 0, "", fmt.Errorf("%s: %w", op, err)
	}
	var v gh.JITRunnerConfig
	if _, err := c.gh.Do(ctx, req, &v); err != nil {
		return 0, "", wrap(op, err)
	}
	if v.EncodedJITConfig == nil || *v.EncodedJITConfig == "" {
		return 0, "", fmt.Errorf("%s: answer has no encoded_jit_config", op)
	}
	return v.GetRunner().GetID(), config.Secret(*v.EncodedJITConfig), nil
}

// DeleteRunner removes a runner registration, e.g. one whose runner never
// came online. A runner already gone is ErrNotFound.
func (c *Client) DeleteRunner(ctx context.Context, owner, repo string, runnerID int64) error {
	op := fmt.Sprintf("deleting runner %d on %s/%s", runnerID, owner, repo)
	req, err := c.gh.NewRequest("DELETE", fmt.Sprintf("%sactions/runners/%d", repoPath(owner, repo), runnerID), nil)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err = c.gh.Do(ctx, req, nil)
	return wrap(op, err)
}

// maxStatusDescription is GitHub's limit on a commit status description.
const maxStatusDescription = 140

// CreateStatus posts a commit status (pending, success, failure, error) on
// sha under context. The description is cut to GitHub's 140 characters
// (on a rune boundary) instead of being refused with 422.
func (c *Client) CreateStatus(ctx context.Context, owner, repo, sha, state, targetURL, description, statusContext string) error {
	op := fmt.Sprintf("posting status %s=%s on %s/%s@%s", statusContext, state, owner, repo, sha)
	if r := []rune(description); len(r) > maxStatusDescription {
		description = string(r[:maxStatusDescription-1]) + "…"
	}
	st := &gh.RepoStatus{State: &state, Description: &description, Context: &statusContext}
	if targetURL != "" {
		st.TargetURL = &targetURL
	}
	req, err := c.gh.NewRequest("POST", repoPath(owner, repo)+"statuses/"+sha, st)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err = c.gh.Do(ctx, req, nil)
	return wrap(op, err)
}
