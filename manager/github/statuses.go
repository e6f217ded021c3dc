package github

import (
	"context"
	"fmt"

	gh "github.com/google/go-github/v60/github"
)

// Status is a commit status as GitHub keeps it.
type Status struct {
	State, Description, TargetURL string
}

// LatestStatus returns the newest status named statusContext on sha: after
// a crash between posting a status and recording it, the reporter looks
// whether it took effect instead of posting it twice. None is ErrNotFound.
// GitHub lists a ref's statuses newest first.
func (c *Client) LatestStatus(ctx context.Context, owner, repo, sha, statusContext string) (Status, error) {
	op := fmt.Sprintf("finding status %s on %s/%s@%s", statusContext, owner, repo, sha)
	opts := &gh.ListOptions{PerPage: perPage}
	for {
		res, resp, err := c.gh.Repositories.ListStatuses(ctx, owner, repo, sha, opts)
		if err != nil {
			return Status{}, wrap(op, err)
		}
		for _, s := range res {
			if s.GetContext() == statusContext {
				return Status{State: s.GetState(), Description: s.GetDescription(), TargetURL: s.GetTargetURL()}, nil
			}
		}
		if resp.NextPage == 0 {
			return Status{}, fmt.Errorf("%s: %w", op, ErrNotFound)
		}
		opts.Page = resp.NextPage
	}
}
