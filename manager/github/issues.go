package github

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"
)

// perPage is GitHub's largest page: fewer calls per listing.
const perPage = 100

// repoPath is "repos/{owner}/{repo}/" with both names escaped as path
// segments; GitHub's names are plain, but a malformed one must not reach
// another route.
func repoPath(owner, repo string) string {
	return "repos/" + url.PathEscape(owner) + "/" + url.PathEscape(repo) + "/"
}

// Role returns the user's role on the repository: role_name of the
// collaborator-permission endpoint (admin, maintain, write, triage, read, or
// a custom role). The older "permission" field folds maintain into write and
// triage into read, too coarse for min_role; it is used only when a server
// sends no role_name. go-github v60 has no field for role_name, hence the
// own type. An unknown user is ErrNotFound.
func (c *Client) Role(ctx context.Context, owner, repo, user string) (string, error) {
	op := fmt.Sprintf("getting role of %s on %s/%s", user, owner, repo)
	req, err := c.gh.NewRequest("GET", repoPath(owner, repo)+"collaborators/"+url.PathEscape(user)+"/permission", nil)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	var v struct {
		Permission string `json:"permission"`
		RoleName   string `json:"role_name"`
	}
	if _, err := c.gh.Do(ctx, req, &v); err != nil {
		return "", wrap(op, err)
	}
	if v.RoleName != "" {
		return v.RoleName, nil
	}
	return v.Permission, nil
}

// RemoveLabel removes a label from an issue or PR. go-github v60 puts the
// name into the path unescaped, so "a/b" becomes two segments and "#" or "?"
// cut the path; the name is escaped here as one segment ("a%2Fb", "%23").
// A label that is already gone is ErrNotFound.
func (c *Client) RemoveLabel(ctx context.Context, owner, repo string, number int, label string) error {
	op := fmt.Sprintf("removing label %q from %s/%s#%d", label, owner, repo, number)
	u := fmt.Sprintf("%sissues/%d/labels/%s", repoPath(owner, repo), number, url.PathEscape(label))
	req, err := c.gh.NewRequest("DELETE", u, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err = c.gh.Do(ctx, req, nil)
	return wrap(op, err)
}

// Comment posts a comment on an issue or PR and returns its id.
func (c *Client) Comment(ctx context.Context, owner, repo string, number int, body string) (int64, error) {
	cm, _, err := c.gh.Issues.CreateComment(ctx, owner, repo, number, &gh.IssueComment{Body: &body})
	if err != nil {
		return 0, wrap(fmt.Sprintf("commenting on %s/%s#%d", owner, repo, number), err)
	}
	return cm.GetID(), nil
}

// EditComment replaces the body of a comment.
func (c *Client) EditComment(ctx context.Context, owner, repo string, id int64, body string) error {
	_, _, err := c.gh.Issues.EditComment(ctx, owner, repo, id, &gh.IssueComment{Body: &body})
	return wrap(fmt.Sprintf("editing comment %d on %s/%s", id, owner, repo), err)
}

// FindComment returns the id of the first comment on the issue or PR whose
// body contains marker (e.g. "<!-- buildfleet:request=ID -->"). After a
// crash between posting and recording a comment, this finds it again
// instead of posting a second one. None is ErrNotFound.
func (c *Client) FindComment(ctx context.Context, owner, repo string, number int, marker string) (int64, error) {
	op := fmt.Sprintf("finding comment on %s/%s#%d", owner, repo, number)
	opts := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: perPage}}
	for {
		cms, resp, err := c.gh.Issues.ListComments(ctx, owner, repo, number, opts)
		if err != nil {
			return 0, wrap(op, err)
		}
		for _, cm := range cms {
			if strings.Contains(cm.GetBody(), marker) {
				return cm.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, fmt.Errorf("%s: %w", op, ErrNotFound)
		}
		opts.Page = resp.NextPage
	}
}

// LastLabeler returns who added the label most recently, and when (see
// LastLabelEvent).
func (c *Client) LastLabeler(ctx context.Context, owner, repo string, number int, label string) (string, time.Time, error) {
	e, err := c.LastLabelEvent(ctx, owner, repo, number, label)
	return e.Actor, e.At, err
}
