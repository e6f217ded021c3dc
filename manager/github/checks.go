package github

import (
	"context"
	"fmt"
	"time"

	gh "github.com/google/go-github/v60/github"
)

// CheckRun is what buildfleet writes into a check run. Only Apps may write
// check runs; a token gets 403 from GitHub.
type CheckRun struct {
	Name       string
	HeadSHA    string
	ExternalID string
	DetailsURL string
	// Status is queued, in_progress or completed; Conclusion is set only
	// when completed (success, failure, neutral, cancelled, ...).
	Status      string
	Conclusion  string
	StartedAt   time.Time
	CompletedAt time.Time
	Title       string
	Summary     string
}

func ptr[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}

func stamp(t time.Time) *gh.Timestamp {
	if t.IsZero() {
		return nil
	}
	return &gh.Timestamp{Time: t}
}

func (c CheckRun) output() *gh.CheckRunOutput {
	if c.Title == "" && c.Summary == "" {
		return nil
	}
	return &gh.CheckRunOutput{Title: ptr(c.Title), Summary: ptr(c.Summary)}
}

// CreateCheckRun creates a check run and returns its id.
func (c *Client) CreateCheckRun(ctx context.Context, owner, repo string, cr CheckRun) (int64, error) {
	run, _, err := c.gh.Checks.CreateCheckRun(ctx, owner, repo, gh.CreateCheckRunOptions{
		Name: cr.Name, HeadSHA: cr.HeadSHA, DetailsURL: ptr(cr.DetailsURL), ExternalID: ptr(cr.ExternalID),
		Status: ptr(cr.Status), Conclusion: ptr(cr.Conclusion), StartedAt: stamp(cr.StartedAt),
		CompletedAt: stamp(cr.CompletedAt), Output: cr.output(),
	})
	if err != nil {
		return 0, wrap(fmt.Sprintf("creating check run %s on %s/%s@%s", cr.Name, owner, repo, cr.HeadSHA), err)
	}
	return run.GetID(), nil
}

// UpdateCheckRun sets the fields of an existing check run. go-github v60
// cannot send started_at on an update; it is set when the run is created.
func (c *Client) UpdateCheckRun(ctx context.Context, owner, repo string, id int64, cr CheckRun) error {
	_, _, err := c.gh.Checks.UpdateCheckRun(ctx, owner, repo, id, gh.UpdateCheckRunOptions{
		Name: cr.Name, DetailsURL: ptr(cr.DetailsURL), ExternalID: ptr(cr.ExternalID),
		Status: ptr(cr.Status), Conclusion: ptr(cr.Conclusion), CompletedAt: stamp(cr.CompletedAt),
		Output: cr.output(),
	})
	return wrap(fmt.Sprintf("updating check run %d (%s) on %s/%s", id, cr.Name, owner, repo), err)
}

// FindCheckRun returns the id of the check run named name on sha whose
// external_id is externalID: after a crash between creating a check run and
// recording its id, this finds it instead of creating a second one. None is
// ErrNotFound.
func (c *Client) FindCheckRun(ctx context.Context, owner, repo, sha, name, externalID string) (int64, error) {
	op := fmt.Sprintf("finding check run %s on %s/%s@%s", name, owner, repo, sha)
	opts := &gh.ListCheckRunsOptions{CheckName: &name, Filter: ptr("all"), ListOptions: gh.ListOptions{PerPage: perPage}}
	for {
		res, resp, err := c.gh.Checks.ListCheckRunsForRef(ctx, owner, repo, sha, opts)
		if err != nil {
			return 0, wrap(op, err)
		}
		for _, r := range res.CheckRuns {
			if r.GetExternalID() == externalID && r.GetName() == name {
				return r.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, fmt.Errorf("%s: %w", op, ErrNotFound)
		}
		opts.Page = resp.NextPage
	}
}
