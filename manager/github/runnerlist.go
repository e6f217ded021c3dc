package github

import (
	"context"
	"fmt"

	gh "github.com/google/go-github/v60/github"
)

// SelfHostedRunner is a repository runner as GitHub lists it.
type SelfHostedRunner struct {
	ID     int64
	Name   string
	Status string // online or offline
	Busy   bool
}

// ListRunners returns every self-hosted runner registered on the
// repository (all pages). The fleet uses it to find registrations that
// dead runners left behind.
func (c *Client) ListRunners(ctx context.Context, owner, repo string) ([]SelfHostedRunner, error) {
	op := fmt.Sprintf("listing runners of %s/%s", owner, repo)
	opts := &gh.ListOptions{PerPage: perPage}
	var out []SelfHostedRunner
	for {
		rs, resp, err := c.gh.Actions.ListRunners(ctx, owner, repo, opts)
		if err != nil {
			return nil, wrap(op, err)
		}
		for _, r := range rs.Runners {
			out = append(out, SelfHostedRunner{ID: r.GetID(), Name: r.GetName(), Status: r.GetStatus(), Busy: r.GetBusy()})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}
