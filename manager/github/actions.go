package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"
)

// Dispatch is GitHub's answer to a workflow dispatch. RunID is 0 when the
// server does not return run details (GitHub Enterprise Server before the
// feature): the caller then finds the run with FindRun.
type Dispatch struct {
	RunID   int64
	RunURL  string
	HTMLURL string
}

// Run is a workflow run, as far as buildfleet follows it.
type Run struct {
	ID int64
	// Name is the workflow's name; DisplayTitle is the run-name the
	// workflow sets (GitHub shows it as the run's title).
	Name         string
	DisplayTitle string
	Event        string
	// Status: queued, in_progress, completed, ...; Conclusion is set once
	// completed: success, failure, cancelled, ...
	Status     string
	Conclusion string
	HeadSHA    string
	HTMLURL    string
	CreatedAt  time.Time
}

func workflowPath(owner, repo, workflowFile string) string {
	return repoPath(owner, repo) + "actions/workflows/" + url.PathEscape(workflowFile) + "/"
}

// DispatchWorkflow starts a workflow_dispatch run of workflowFile on ref (a
// branch or tag, never a SHA). It asks for return_run_details so that
// GitHub answers 200 with the run id, saving a search for the run. Servers
// that predate the field reject it with 400 (or 422 naming it): the
// request was not processed, so it is sent once more without the field, and
// the client remembers not to ask again. go-github v60 has no such field,
// hence the own types.
func (c *Client) DispatchWorkflow(ctx context.Context, owner, repo, workflowFile, ref string, inputs map[string]string) (Dispatch, error) {
	op := fmt.Sprintf("dispatching %s on %s/%s@%s", workflowFile, owner, repo, ref)
	if !c.noRunDetails.Load() {
		d, err := c.dispatch(ctx, owner, repo, workflowFile, ref, inputs, true)
		if err == nil || !rejectsRunDetails(err) {
			return d, wrap(op, err)
		}
	}
	d, err := c.dispatch(ctx, owner, repo, workflowFile, ref, inputs, false)
	if err != nil {
		return Dispatch{}, wrap(op, err)
	}
	c.noRunDetails.Store(true)
	return d, nil
}

type dispatchRequest struct {
	Ref              string            `json:"ref"`
	Inputs           map[string]string `json:"inputs,omitempty"`
	ReturnRunDetails bool              `json:"return_run_details,omitempty"`
}

func (c *Client) dispatch(ctx context.Context, owner, repo, workflowFile, ref string, inputs map[string]string, details bool) (Dispatch, error) {
	req, err := c.gh.NewRequest("POST", workflowPath(owner, repo, workflowFile)+"dispatches",
		&dispatchRequest{Ref: ref, Inputs: inputs, ReturnRunDetails: details})
	if err != nil {
		return Dispatch{}, err
	}
	var v struct {
		RunID   int64  `json:"workflow_run_id"`
		RunURL  string `json:"run_url"`
		HTMLURL string `json:"html_url"`
	}
	if _, err := c.gh.Do(ctx, req, &v); err != nil {
		return Dispatch{}, err
	}
	// A 204 has no body and leaves v empty: RunID 0.
	return Dispatch{RunID: v.RunID, RunURL: v.RunURL, HTMLURL: v.HTMLURL}, nil
}

// rejectsRunDetails tells whether an answer refuses return_run_details: any
// 400 (a valid dispatch never gets one; GHES answers 400 to unknown keys),
// or a 422 whose message names the field. Other 422s (unknown input, no
// workflow_dispatch trigger) are the caller's to see.
func rejectsRunDetails(err error) bool {
	var er *gh.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil {
		return false
	}
	switch er.Response.StatusCode {
	case http.StatusBadRequest:
		return true
	case http.StatusUnprocessableEntity:
		return strings.Contains(message(er), "return_run_details")
	}
	return false
}

// FindRun finds the workflow_dispatch run of workflowFile created since
// `since` whose run-name contains runNameContains (the request id that the
// workflow puts into its run-name). It is the fallback when a dispatch
// returned no run id, and the recovery after a crash. The run-name is the
// run's display_title; name is the workflow's name, checked as well. Runs
// are listed newest first, so the newest match wins. None is ErrNotFound.
func (c *Client) FindRun(ctx context.Context, owner, repo, workflowFile, runNameContains string, since time.Time) (Run, error) {
	op := fmt.Sprintf("finding run %q of %s on %s/%s", runNameContains, workflowFile, owner, repo)
	q := url.Values{}
	q.Set("event", "workflow_dispatch")
	q.Set("per_page", fmt.Sprint(perPage))
	if !since.IsZero() {
		q.Set("created", ">="+since.UTC().Format(time.RFC3339))
	}
	for page := 1; page != 0; {
		q.Set("page", fmt.Sprint(page))
		req, err := c.gh.NewRequest("GET", workflowPath(owner, repo, workflowFile)+"runs?"+q.Encode(), nil)
		if err != nil {
			return Run{}, fmt.Errorf("%s: %w", op, err)
		}
		var v gh.WorkflowRuns
		resp, err := c.gh.Do(ctx, req, &v)
		if err != nil {
			return Run{}, wrap(op, err)
		}
		for _, r := range v.WorkflowRuns {
			run := runOf(r)
			if run.CreatedAt.Before(since) {
				continue // servers that ignore "created" still get the right answer
			}
			if strings.Contains(run.DisplayTitle, runNameContains) || strings.Contains(run.Name, runNameContains) {
				return run, nil
			}
		}
		page = resp.NextPage
	}
	return Run{}, fmt.Errorf("%s: %w", op, ErrNotFound)
}

// GetRun returns a workflow run.
func (c *Client) GetRun(ctx context.Context, owner, repo string, id int64) (Run, error) {
	r, _, err := c.gh.Actions.GetWorkflowRunByID(ctx, owner, repo, id)
	if err != nil {
		return Run{}, wrap(fmt.Sprintf("getting run %d of %s/%s", id, owner, repo), err)
	}
	return runOf(r), nil
}

// CancelRun asks GitHub to cancel a run (202: cancellation is
// asynchronous). A run that already completed is ErrConflict (409).
func (c *Client) CancelRun(ctx context.Context, owner, repo string, id int64) error {
	_, err := c.gh.Actions.CancelWorkflowRunByID(ctx, owner, repo, id)
	var accepted *gh.AcceptedError
	if errors.As(err, &accepted) {
		return nil
	}
	return wrap(fmt.Sprintf("cancelling run %d of %s/%s", id, owner, repo), err)
}

func runOf(r *gh.WorkflowRun) Run {
	return Run{
		ID:           r.GetID(),
		Name:         r.GetName(),
		DisplayTitle: r.GetDisplayTitle(),
		Event:        r.GetEvent(),
		Status:       r.GetStatus(),
		Conclusion:   r.GetConclusion(),
		HeadSHA:      r.GetHeadSHA(),
		HTMLURL:      r.GetHTMLURL(),
		CreatedAt:    r.GetCreatedAt().Time,
	}
}
