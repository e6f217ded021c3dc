package github

import (
	"context"
	"fmt"
	"strings"

	gh "github.com/google/go-github/v60/github"
)

// LabeledOpenPRs returns the numbers of the repository's open PRs that carry
// the label: the recovery of label events whose webhook was lost. It is one
// search call per page of 100. The search matches labels loosely (it is a
// text search), so results are kept only when they carry the exact label.
func (c *Client) LabeledOpenPRs(ctx context.Context, owner, repo, label string) ([]int, error) {
	op := fmt.Sprintf("searching open PRs of %s/%s labeled %q", owner, repo, label)
	q := fmt.Sprintf("repo:%s/%s is:pr is:open label:%s", owner, repo, searchQuote(label))
	opts := &gh.SearchOptions{ListOptions: gh.ListOptions{PerPage: perPage}}
	var out []int
	for {
		res, resp, err := c.gh.Search.Issues(ctx, q, opts)
		if err != nil {
			return nil, wrap(op, err)
		}
		for _, is := range res.Issues {
			if is.IsPullRequest() && hasLabel(is.Labels, label) {
				out = append(out, is.GetNumber())
			}
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// searchQuote quotes a qualifier value for GitHub's search syntax, so that
// spaces, colons and emoji stay within the value; a double quote or
// backslash inside is escaped with a backslash.
func searchQuote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(v) + `"`
}

func hasLabel(ls []*gh.Label, name string) bool {
	for _, l := range ls {
		if l.GetName() == name {
			return true
		}
	}
	return false
}
