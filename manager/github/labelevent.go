package github

import (
	"context"
	"fmt"
	"time"

	gh "github.com/google/go-github/v60/github"
)

// LabelEvent is what an issue's events say of a label's last addition and
// of the PR's head branch.
type LabelEvent struct {
	// Actor added the label most recently, at At (GitHub's clock).
	Actor string
	At    time.Time
	// HeadRewrites are the moments the PR's head branch was force-pushed
	// or restored (head_ref_force_pushed, head_ref_restored), oldest
	// first: the head changes GitHub records itself, independent of the
	// webhooks the manager may have missed.
	HeadRewrites []time.Time
}

// LastLabelEvent reads the issue's events (every page: they come oldest
// first): who added the label last and when, the actor of a label found on
// an open PR whose labeled webhook was lost, and the head rewrites that
// tell whether the manager's own record of the PR's pushes is complete. No
// labeled event for that exact name is ErrNotFound.
func (c *Client) LastLabelEvent(ctx context.Context, owner, repo string, number int, label string) (LabelEvent, error) {
	op := fmt.Sprintf("finding who labeled %s/%s#%d %q", owner, repo, number, label)
	opts := &gh.ListOptions{PerPage: perPage}
	var out LabelEvent
	found := false
	for {
		evs, resp, err := c.gh.Issues.ListIssueEvents(ctx, owner, repo, number, opts)
		if err != nil {
			return LabelEvent{}, wrap(op, err)
		}
		for _, e := range evs {
			t := e.GetCreatedAt().Time
			switch e.GetEvent() {
			case "head_ref_force_pushed", "head_ref_restored":
				out.HeadRewrites = append(out.HeadRewrites, t)
			case "labeled":
				if e.GetLabel().GetName() == label && (!found || !t.Before(out.At)) {
					out.Actor, out.At, found = e.GetActor().GetLogin(), t, true
				}
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if !found {
		return LabelEvent{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return out, nil
}
