package github

import (
	"context"
	"fmt"
	"strings"
)

// PullRequest is what the trigger path needs to know about a PR.
type PullRequest struct {
	Number int
	// State is "open" or "closed"; a merged PR is closed and Merged.
	State  string
	Merged bool
	// HeadSHA is the PR's current head commit.
	HeadSHA string
	// HeadRepo is the full name ("owner/repo") of the repository the head
	// branch lives in; empty when that repository was deleted.
	HeadRepo string
	// Fork reports whether the head lives elsewhere than the base
	// repository (also when the head repository was deleted).
	Fork    bool
	BaseRef string
}

// PullRequest returns a PR's state and head.
func (c *Client) PullRequest(ctx context.Context, owner, repo string, number int) (PullRequest, error) {
	p, _, err := c.gh.PullRequests.Get(ctx, owner, repo, number)
	if err != nil {
		return PullRequest{}, wrap(fmt.Sprintf("getting PR %s/%s#%d", owner, repo, number), err)
	}
	head := p.GetHead().GetRepo().GetFullName()
	base := p.GetBase().GetRepo().GetFullName()
	if base == "" {
		base = owner + "/" + repo
	}
	return PullRequest{
		Number:   p.GetNumber(),
		State:    p.GetState(),
		Merged:   p.GetMerged(),
		HeadSHA:  p.GetHead().GetSHA(),
		HeadRepo: head,
		Fork:     !strings.EqualFold(head, base),
		BaseRef:  p.GetBase().GetRef(),
	}, nil
}

// DefaultBranch returns the repository's default branch: where the trusted
// workflow definition is dispatched from.
func (c *Client) DefaultBranch(ctx context.Context, owner, repo string) (string, error) {
	r, _, err := c.gh.Repositories.Get(ctx, owner, repo)
	if err != nil {
		return "", wrap(fmt.Sprintf("getting repository %s/%s", owner, repo), err)
	}
	return r.GetDefaultBranch(), nil
}
