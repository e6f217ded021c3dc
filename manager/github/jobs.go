package github

import (
	"context"
	"fmt"

	gh "github.com/google/go-github/v60/github"
)

// Job is one job of a workflow run, as the jobs list gives it.
type Job struct {
	ID         int64
	RunID      int64
	Name       string
	Labels     []string
	HTMLURL    string
	Status     string
	Conclusion string
	RunnerName string
}

// RunJobs lists the jobs of a run's latest attempt (all pages). The
// scale-set source uses it to find the job a queue message speaks of: the
// message names the run and the job's display name, not the job's id.
func (c *Client) RunJobs(ctx context.Context, owner, repo string, runID int64) ([]Job, error) {
	op := fmt.Sprintf("listing jobs of run %d of %s/%s", runID, owner, repo)
	var out []Job
	opts := &gh.ListWorkflowJobsOptions{Filter: "latest", ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		page, resp, err := c.gh.Actions.ListWorkflowJobs(ctx, owner, repo, runID, opts)
		if err != nil {
			return nil, wrap(op, err)
		}
		for _, j := range page.Jobs {
			out = append(out, Job{
				ID: j.GetID(), RunID: j.GetRunID(), Name: j.GetName(), Labels: j.Labels, HTMLURL: j.GetHTMLURL(),
				Status: j.GetStatus(), Conclusion: j.GetConclusion(), RunnerName: j.GetRunnerName(),
			})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}
