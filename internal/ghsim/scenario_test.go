package ghsim

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"
)

const buildLabel = "🔨 test-with-buildbots"

// wantStatus fails unless err is nil and resp has code, or err is a
// go-github error with that code.
func wantStatus(t *testing.T, what string, resp *github.Response, err error, code int) {
	t.Helper()
	got := 0
	var ge *github.ErrorResponse
	var ae *github.AcceptedError
	switch {
	case errors.As(err, &ge):
		got = ge.Response.StatusCode
	case errors.As(err, &ae):
		got = http.StatusAccepted
	case err != nil:
		t.Fatalf("%s: %v", what, err)
	case resp != nil:
		got = resp.StatusCode
	}
	if got != code {
		t.Fatalf("%s: status %d, want %d (%v)", what, got, code, err)
	}
}

// scenario drives every endpoint ghsim serves and every webhook it emits,
// through go-github c (whose transport the caller may wrap).
func scenario(t *testing.T, s *Server, c *github.Client, sink *hookSink) {
	const o, r = "python", "cpython"
	bg := ctx(t)
	hookID, err := s.AddHook(testRepo, sink.srv.URL, testSecret, nil)
	must(t, err)
	must(t, s.AddCollaborator(testRepo, "alice", "triage"))
	s.AddUser("mallory")
	n, err := s.OpenPR(testRepo, PRSpec{Author: "contributor", Fork: "contributor", Title: "gh-1: fix"})
	must(t, err)
	must(t, s.LabelPR(testRepo, n, buildLabel, "alice"))

	_, resp, err := c.Repositories.Get(bg, o, r)
	wantStatus(t, "get repo", resp, err, 200)
	for login, code := range map[string]int{"alice": 200, "mallory": 200, "nobody-here": 404} {
		_, resp, err = c.Repositories.GetPermissionLevel(bg, o, r, login)
		wantStatus(t, "permission "+login, resp, err, code)
	}
	pr, resp, err := c.PullRequests.Get(bg, o, r, n)
	wantStatus(t, "get pull", resp, err, 200)
	_, resp, err = c.Issues.ListLabelsByIssue(bg, o, r, n, nil)
	wantStatus(t, "list labels", resp, err, 200)
	odd := "a/b #1 %: x ✓"
	// go-github v60's AddLabelsToIssue sends a bare array, which GitHub
	// accepts but its OpenAPI description no longer allows; send the object
	// form GitHub recommends.
	req, err := c.NewRequest("POST", "repos/python/cpython/issues/"+strconv.Itoa(n)+"/labels", map[string]any{"labels": []string{odd, "two words"}})
	must(t, err)
	resp, err = c.Do(bg, req, nil)
	wantStatus(t, "add labels", resp, err, 200)
	resp, err = c.Issues.RemoveLabelForIssue(bg, o, r, n, url.PathEscape(odd))
	wantStatus(t, "remove label", resp, err, 200)
	resp, err = c.Issues.RemoveLabelForIssue(bg, o, r, n, url.PathEscape(odd))
	wantStatus(t, "remove missing label", resp, err, 404)
	resp, err = c.Issues.RemoveLabelForIssue(bg, o, r, n, url.PathEscape(buildLabel))
	wantStatus(t, "remove build label", resp, err, 200)
	must(t, s.ForcePushPR(testRepo, n, ""))
	evs, resp, err := c.Issues.ListIssueEvents(bg, o, r, n, nil)
	wantStatus(t, "issue events", resp, err, 200)
	if len(evs) == 0 || evs[len(evs)-1].GetEvent() != "head_ref_force_pushed" {
		t.Errorf("issue events after a force push: last is not head_ref_force_pushed")
	}

	cm, resp, err := c.Issues.CreateComment(bg, o, r, n, &github.IssueComment{Body: github.String("scheduled by @alice")})
	wantStatus(t, "create comment", resp, err, 201)
	_, resp, err = c.Issues.ListComments(bg, o, r, n, nil)
	wantStatus(t, "list comments", resp, err, 200)
	_, resp, err = c.Issues.GetComment(bg, o, r, cm.GetID())
	wantStatus(t, "get comment", resp, err, 200)
	_, resp, err = c.Issues.EditComment(bg, o, r, cm.GetID(), &github.IssueComment{Body: github.String("edited")})
	wantStatus(t, "edit comment", resp, err, 200)
	must(t, s.LabelPR(testRepo, n, buildLabel, "alice"))
	res, resp, err := c.Search.Issues(bg, `repo:python/cpython is:pr is:open label:"`+buildLabel+`"`, nil)
	wantStatus(t, "search", resp, err, 200)
	if res.GetTotal() != 1 {
		t.Errorf("search found %d PRs, want 1", res.GetTotal())
	}

	sha := pr.GetHead().GetSHA()
	out, resp, err := dispatchRaw(t, c, "buildbots.yml", buildbotsInputs(sha))
	wantStatus(t, "dispatch with details", resp, err, 200)
	runID := int64(out["workflow_run_id"].(float64))
	resp, err = c.Actions.CreateWorkflowDispatchEventByFileName(bg, o, r, "buildbots.yml", github.CreateWorkflowDispatchEventRequest{Ref: "main", Inputs: buildbotsInputs(sha)})
	wantStatus(t, "dispatch", resp, err, 204)
	bad := buildbotsInputs(sha)
	delete(bad, "sha")
	resp, err = c.Actions.CreateWorkflowDispatchEventByFileName(bg, o, r, "buildbots.yml", github.CreateWorkflowDispatchEventRequest{Ref: "main", Inputs: bad})
	wantStatus(t, "dispatch missing input", resp, err, 422)

	_, resp, err = c.Actions.GetWorkflowRunByID(bg, o, r, runID)
	wantStatus(t, "get run", resp, err, 200)
	_, resp, err = c.Actions.ListRepositoryWorkflowRuns(bg, o, r, &github.ListWorkflowRunsOptions{Event: "workflow_dispatch", Status: "queued", Branch: "main"})
	wantStatus(t, "list runs", resp, err, 200)
	wfRuns, resp, err := c.Actions.ListWorkflowRunsByFileName(bg, o, r, "buildbots.yml", &github.ListWorkflowRunsOptions{
		Event: "workflow_dispatch", Status: "queued", Branch: "main", Created: ">=2000-01-01T00:00:00Z", ListOptions: github.ListOptions{PerPage: 1}})
	wantStatus(t, "list workflow runs", resp, err, 200)
	if wfRuns.GetTotalCount() != 2 || len(wfRuns.WorkflowRuns) != 1 || resp.NextPage != 2 {
		t.Errorf("workflow runs: total %d, %d on the page, next page %d", wfRuns.GetTotalCount(), len(wfRuns.WorkflowRuns), resp.NextPage)
	}
	_, resp, err = c.Actions.ListWorkflowRunsByID(bg, o, r, wfRuns.WorkflowRuns[0].GetWorkflowID(), nil)
	wantStatus(t, "list workflow runs by id", resp, err, 200)
	_, resp, err = c.Actions.ListWorkflowRunsByFileName(bg, o, r, "no-such.yml", nil)
	wantStatus(t, "list runs of unknown workflow", resp, err, 404)
	jobs, resp, err := c.Actions.ListWorkflowJobs(bg, o, r, runID, nil)
	wantStatus(t, "list jobs", resp, err, 200)
	_, resp, err = c.Actions.GetWorkflowJobByID(bg, o, r, jobs.Jobs[0].GetID())
	wantStatus(t, "get job", resp, err, 200)

	jit, resp, err := c.Actions.GenerateRepoJITConfig(bg, o, r, &github.GenerateJITConfigRequest{Name: "linux-1", RunnerGroupID: 1, Labels: jobs.Jobs[0].Labels})
	wantStatus(t, "jit", resp, err, 201)
	_, resp, err = c.Actions.GenerateRepoJITConfig(bg, o, r, &github.GenerateJITConfigRequest{Name: "linux-1", RunnerGroupID: 1, Labels: []string{"x"}})
	wantStatus(t, "jit duplicate", resp, err, 409)
	_, resp, err = c.Actions.ListRunners(bg, o, r, nil)
	wantStatus(t, "list runners", resp, err, 200)
	_, resp, err = c.Actions.ListRunnerApplicationDownloads(bg, o, r)
	wantStatus(t, "runner downloads", resp, err, 200)
	_, resp, err = c.Actions.GetRunner(bg, o, r, jit.Runner.GetID())
	wantStatus(t, "get runner", resp, err, 200)
	spare, _, err := c.Actions.GenerateRepoJITConfig(bg, o, r, &github.GenerateJITConfigRequest{Name: "spare", RunnerGroupID: 1, Labels: []string{"nothing"}})
	must(t, err)
	resp, err = c.Actions.RemoveRunner(bg, o, r, spare.Runner.GetID())
	wantStatus(t, "remove runner", resp, err, 204)
	must(t, RunRunner(bg, RunnerOptions{JITConfig: jit.GetEncodedJITConfig(), Out: testWriter{t}}))
	resp, err = c.Actions.CancelWorkflowRunByID(bg, o, r, runID)
	wantStatus(t, "cancel", resp, err, 202)
	sink.waitFor("workflow_run", "completed", nil)
	resp, err = c.Actions.CancelWorkflowRunByID(bg, o, r, runID)
	wantStatus(t, "cancel completed", resp, err, 409)

	st := &github.RepoStatus{State: github.String("pending"), Context: github.String("buildfleet/linux"),
		TargetURL: github.String(jobs.Jobs[0].GetHTMLURL()), Description: github.String("queued")}
	_, resp, err = c.Repositories.CreateStatus(bg, o, r, sha, st)
	wantStatus(t, "create status", resp, err, 201)
	st.Description = github.String(strings.Repeat("x", 141))
	_, resp, err = c.Repositories.CreateStatus(bg, o, r, sha, st)
	wantStatus(t, "create status too long", resp, err, 422)
	_, resp, err = c.Repositories.ListStatuses(bg, o, r, sha, nil)
	wantStatus(t, "list statuses", resp, err, 200)
	_, resp, err = c.Repositories.GetCombinedStatus(bg, o, r, sha, nil)
	wantStatus(t, "combined status", resp, err, 200)

	cr, resp, err := c.Checks.CreateCheckRun(bg, o, r, github.CreateCheckRunOptions{Name: "buildfleet/linux", HeadSHA: sha, Status: github.String("in_progress"), DetailsURL: github.String(jobs.Jobs[0].GetHTMLURL())})
	wantStatus(t, "create check run", resp, err, 201)
	_, resp, err = c.Checks.UpdateCheckRun(bg, o, r, cr.GetID(), github.UpdateCheckRunOptions{Name: "buildfleet/linux", Conclusion: github.String("success"),
		Output: &github.CheckRunOutput{Title: github.String("ok"), Summary: github.String("built")}})
	wantStatus(t, "update check run", resp, err, 200)
	_, resp, err = c.Checks.GetCheckRun(bg, o, r, cr.GetID())
	wantStatus(t, "get check run", resp, err, 200)
	_, resp, err = c.Checks.ListCheckRunsForRef(bg, o, r, sha, &github.ListCheckRunsOptions{CheckName: github.String("buildfleet/linux")})
	wantStatus(t, "list check runs", resp, err, 200)

	must(t, s.PushPR(testRepo, n, ""))
	must(t, s.UnlabelPR(testRepo, n, buildLabel, "alice"))
	must(t, s.ClosePR(testRepo, n, "alice", true))
	sink.waitFor("pull_request", "closed", nil)

	eventually(t, "deliveries recorded", func() bool { return len(s.Deliveries()) >= len(sink.all()) })
	ds, resp, err := c.Repositories.ListHookDeliveries(bg, o, r, hookID, nil)
	wantStatus(t, "list deliveries", resp, err, 200)
	_, resp, err = c.Repositories.GetHookDelivery(bg, o, r, hookID, ds[0].GetID())
	wantStatus(t, "get delivery", resp, err, 200)
	_, resp, err = c.Repositories.RedeliverHookDelivery(bg, o, r, hookID, ds[0].GetID())
	wantStatus(t, "redeliver", resp, err, 202)
	_, resp, err = c.RateLimit.Get(bg)
	wantStatus(t, "rate limit", resp, err, 200)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
