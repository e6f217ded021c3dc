package ghsim

import (
	"errors"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
)

func TestWebhookSignature(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	sink := newHookSink(t)
	_, err := s.AddHook(testRepo, sink.srv.URL, testSecret, []string{"pull_request"})
	must(t, err)
	n, err := s.OpenPR(testRepo, PRSpec{})
	must(t, err)
	must(t, s.LabelPR(testRepo, n, buildLabel, "alice"))
	r := sink.waitFor("pull_request", "labeled", nil)
	if r.Sig256 != Sign(testSecret, r.Body) || !strings.HasPrefix(r.Sig1, "sha1=") {
		t.Errorf("signature %q does not match body", r.Sig256)
	}
	if r.Sig256 == Sign("wrong", r.Body) || r.GUID == "" || r.HookID == "" || !strings.HasPrefix(r.UA, "GitHub-Hookshot/") {
		t.Errorf("headers: %+v", r)
	}
	if r.Payload["label"].(map[string]any)["name"] != buildLabel || r.Payload["sender"].(map[string]any)["login"] != "alice" {
		t.Errorf("payload label/sender wrong: %v %v", r.Payload["label"], r.Payload["sender"])
	}
}

func TestLabelNamesWithSpecialCharacters(t *testing.T) {
	s, c := newTestServer(t, Options{})
	n, err := s.OpenPR(testRepo, PRSpec{})
	must(t, err)
	names := []string{buildLabel, "a/b", "has space", "#1", "100%", "x:y", "🔥?&=+"}
	for _, name := range names {
		must(t, s.LabelPR(testRepo, n, name, "alice"))
	}
	for _, name := range names {
		if _, err := c.Issues.RemoveLabelForIssue(ctx(t), "python", "cpython", n, url.PathEscape(name)); err != nil {
			t.Errorf("remove %q: %v", name, err)
		}
	}
	left, _, err := c.Issues.ListLabelsByIssue(ctx(t), "python", "cpython", n, nil)
	must(t, err)
	if len(left) != 0 {
		t.Errorf("labels left: %v", left)
	}
	// A bare array body is accepted too, as on GitHub.
	if _, _, err := c.Issues.AddLabelsToIssue(ctx(t), "python", "cpython", n, []string{"a/b"}); err != nil {
		t.Error(err)
	}
}

func TestFaults(t *testing.T) {
	s, c := newTestServer(t, Options{})
	must(t, s.AddFault(Fault{Kind: FaultServerError, Count: 2, Status: 503, Path: "^/repos/[^/]+/[^/]+$"}))
	for i, want := range []int{503, 503, 200} {
		_, resp, err := c.Repositories.Get(ctx(t), "python", "cpython")
		wantStatus(t, "get repo "+string(rune('0'+i)), resp, err, want)
	}
	must(t, s.AddFault(Fault{Kind: FaultSecondary, Count: 1, RetryAfter: 7}))
	_, _, err := c.Repositories.Get(ctx(t), "python", "cpython")
	var abuse *github.AbuseRateLimitError
	if !errors.As(err, &abuse) || abuse.RetryAfter == nil || abuse.RetryAfter.Seconds() != 7 {
		t.Errorf("secondary: %v", err)
	}
	c2 := newClient(t, s.URL(), testToken) // go-github remembers the secondary limit per client
	must(t, s.AddFault(Fault{Kind: FaultPrimary, Count: 1}))
	_, _, err = c2.Repositories.Get(ctx(t), "python", "cpython")
	var rl *github.RateLimitError
	if !errors.As(err, &rl) || rl.Rate.Remaining != 0 {
		t.Errorf("primary: %v", err)
	}
	must(t, s.AddFault(Fault{Kind: FaultTooMany, Count: 1}))
	_, resp, err := newClient(t, s.URL(), testToken).Repositories.Get(ctx(t), "python", "cpython")
	wantStatus(t, "429", resp, err, 429)
	if _, err := ParseFault("latency:latency=1ms,count=1"); err != nil {
		t.Error(err)
	}
	_, resp, err = newClient(t, s.URL(), "wrong-token").Repositories.Get(ctx(t), "python", "cpython")
	wantStatus(t, "bad token", resp, err, 401)
}

func TestWebhookFaultsAndRedelivery(t *testing.T) {
	s, c := newTestServer(t, Options{})
	sink := newHookSink(t)
	hookID, err := s.AddHook(testRepo, sink.srv.URL, testSecret, []string{"pull_request"})
	must(t, err)
	must(t, s.AddFault(Fault{Kind: FaultDrop, Count: 1, Event: "pull_request"}))
	n, err := s.OpenPR(testRepo, PRSpec{}) // dropped
	must(t, err)
	must(t, s.AddFault(Fault{Kind: FaultDuplicate, Count: 1}))
	must(t, s.LabelPR(testRepo, n, "one", "alice")) // twice, same GUID
	prs := func() []received {
		var out []received
		for _, r := range sink.all() {
			if r.Event == "pull_request" {
				out = append(out, r)
			}
		}
		return out
	}
	eventually(t, "duplicate", func() bool { return len(prs()) == 2 })
	got := prs()
	if got[0].GUID != got[1].GUID {
		t.Errorf("duplicate deliveries have GUIDs %s and %s", got[0].GUID, got[1].GUID)
	}
	ds, _, err := c.Repositories.ListHookDeliveries(ctx(t), "python", "cpython", hookID, nil)
	must(t, err)
	var dropped *github.HookDelivery
	for _, d := range ds {
		if d.GetAction() == "opened" {
			dropped = d
		}
	}
	if dropped == nil || dropped.GetStatusCode() != 0 {
		t.Fatalf("dropped delivery not recorded as failed: %v", dropped)
	}
	_, _, err = c.Repositories.RedeliverHookDelivery(ctx(t), "python", "cpython", hookID, dropped.GetID())
	var ae *github.AcceptedError
	if err != nil && !errors.As(err, &ae) {
		t.Fatal(err)
	}
	r := sink.waitFor("pull_request", "opened", nil)
	if r.GUID != dropped.GetGUID() {
		t.Errorf("redelivery GUID %s, want %s", r.GUID, dropped.GetGUID())
	}
	// Out of order: the held delivery arrives after the next one.
	must(t, s.AddFault(Fault{Kind: FaultReorder, Count: 1}))
	must(t, s.LabelPR(testRepo, n, "first", "alice"))
	must(t, s.LabelPR(testRepo, n, "second", "alice"))
	sink.waitFor("pull_request", "labeled", func(r received) bool { return r.Payload["label"].(map[string]any)["name"] == "first" })
	var order []string
	for _, r := range sink.all() {
		if l, ok := r.Payload["label"].(map[string]any); ok && (l["name"] == "first" || l["name"] == "second") {
			order = append(order, l["name"].(string))
		}
	}
	if strings.Join(order, ",") != "second,first" {
		t.Errorf("order %v, want second,first", order)
	}
}

// TestRealBuildbotsWorkflow expands the repository's own workflow.
func TestRealBuildbotsWorkflow(t *testing.T) {
	if _, err := os.Stat("../../workflows/buildbots.yml"); err != nil {
		t.Skip("workflows/buildbots.yml not present")
	}
	s := New(Options{Tokens: map[string]string{testToken: "bot"}})
	base, err := s.Start("127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { _ = s.Close() })
	must(t, s.CreateRepo(RepoSpec{Owner: "python", Name: "cpython", WorkflowsDir: "../../workflows"}))
	c := newClient(t, base, testToken)
	inputs := buildbotsInputs(strings.Repeat("c", 40))
	inputs["tier"] = "refleak"
	out, resp, err := dispatchRaw(t, c, "buildbots.yml", inputs)
	wantStatus(t, "dispatch", resp, err, 200)
	runID := int64(out["workflow_run_id"].(float64))
	ru, _, err := c.Actions.GetWorkflowRunByID(ctx(t), "python", "cpython", runID)
	must(t, err)
	if !strings.Contains(ru.GetDisplayTitle(), "req-42") {
		t.Errorf("display_title %q lacks the request id", ru.GetDisplayTitle())
	}
	s.mu.Lock()
	jobs := s.st.runs[runID].Jobs
	if len(jobs) != 2 || jobs[1].Name != "macos-arm64-quick" || jobs[0].TimeoutMinutes != 240 || jobs[0].Env["BUILDER"] != "linux-x86_64-quick" {
		t.Errorf("jobs: %d, %q, timeout %d, env %v", len(jobs), jobs[1].Name, jobs[0].TimeoutMinutes, jobs[0].Env)
	}
	s.mu.Unlock()
}

func TestListWorkflowRuns(t *testing.T) {
	var mu sync.Mutex
	t0 := time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)
	now := t0
	s, c := newTestServer(t, Options{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	var ids []int64 // buildbots runs, oldest first
	for i, at := range []time.Time{t0, t0.Add(time.Hour), t0.Add(24 * time.Hour)} {
		mu.Lock()
		now = at
		mu.Unlock()
		in := buildbotsInputs(strings.Repeat("ab", 20))
		in["request_id"] = "req-" + strconv.Itoa(i)
		id, err := s.Dispatch(testRepo, "buildbots.yml", in, "alice")
		must(t, err)
		ids = append(ids, id)
	}
	_, err := s.Dispatch(testRepo, "needs.yml", nil, "alice")
	must(t, err)

	type page struct {
		Total int `json:"total_count"`
		Runs  []struct {
			ID           int64  `json:"id"`
			WorkflowID   int64  `json:"workflow_id"`
			DisplayTitle string `json:"display_title"`
		} `json:"workflow_runs"`
	}
	list := func(workflow string, q url.Values) (page, *github.Response, error) {
		t.Helper()
		req, err := c.NewRequest("GET", "repos/"+testRepo+"/actions/workflows/"+workflow+"/runs?"+q.Encode(), nil)
		must(t, err)
		var p page
		resp, err := c.Do(ctx(t), req, &p)
		return p, resp, err
	}
	// runIDs lists the ids of a list that must answer 200.
	runIDs := func(workflow string, kv ...string) []int64 {
		t.Helper()
		q := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		p, resp, err := list(workflow, q)
		wantStatus(t, workflow+"?"+q.Encode(), resp, err, 200)
		var out []int64
		for _, r := range p.Runs {
			out = append(out, r.ID)
		}
		if p.Total != len(out) && q.Get("per_page") == "" {
			t.Errorf("%s?%s: total_count %d, %d runs", workflow, q.Encode(), p.Total, len(out))
		}
		return out
	}
	eq := func(what string, got []int64, want ...int64) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: runs %v, want %v", what, got, want)
		}
	}
	newest := []int64{ids[2], ids[1], ids[0]}
	eq("by file name", runIDs("buildbots.yml"), newest...)
	all, _, err := list("buildbots.yml", nil)
	must(t, err)
	if all.Runs[0].DisplayTitle != "buildbots req-2 PR #7 (quick)" {
		t.Errorf("display_title = %q", all.Runs[0].DisplayTitle)
	}
	eq("by numeric id", runIDs(strconv.FormatInt(all.Runs[0].WorkflowID, 10)), newest...)
	if got := runIDs("needs.yml"); len(got) != 1 || slices.Contains(newest, got[0]) {
		t.Errorf("needs.yml runs: %v", got)
	}
	eq("workflow without runs", runIDs("push.yml"))

	eq("event", runIDs("buildbots.yml", "event", "workflow_dispatch"), newest...)
	eq("other event", runIDs("buildbots.yml", "event", "push"))
	eq("status", runIDs("buildbots.yml", "status", "queued"), newest...)
	eq("other status", runIDs("buildbots.yml", "status", "success"))
	eq("branch", runIDs("buildbots.yml", "branch", "main"), newest...)
	eq("other branch", runIDs("buildbots.yml", "branch", "feature"))

	for created, want := range map[string][]int64{
		">=2026-11-22T17:00:00Z":                     {ids[2], ids[1]},
		">2026-11-22T17:00:00Z":                      {ids[2]},
		"<2026-11-22T17:00:00Z":                      {ids[0]},
		"<=2026-11-22T17:00:00Z":                     {ids[1], ids[0]},
		">=2026-11-22T18:00:00+01:00":                {ids[2], ids[1]},
		"2026-11-22T16:00:00Z":                       {ids[0]},
		"2026-11-22":                                 {ids[1], ids[0]},
		">2026-11-22":                                {ids[2]},
		">=2026-11-23":                               {ids[2]},
		"<=2026-11-22":                               {ids[1], ids[0]},
		"2026-11-22T16:30:00Z..2026-11-23T16:00:00Z": {ids[2], ids[1]},
		"2026-11-22..2026-11-22":                     {ids[1], ids[0]},
		"*..2026-11-22T16:00:00Z":                    {ids[0]},
		"2026-11-22T17:00:00Z..*":                    {ids[2], ids[1]},
		">=2027-01-01T00:00:00Z":                     nil,
	} {
		eq("created "+created, runIDs("buildbots.yml", "created", created), want...)
	}
	_, resp, err := list("buildbots.yml", url.Values{"created": {">=yesterday"}})
	wantStatus(t, "bad created", resp, err, 422)

	// Pages, with a Link to the next one as on the repository-wide list.
	p1, resp, err := list("buildbots.yml", url.Values{"per_page": {"2"}})
	must(t, err)
	if p1.Total != 3 || len(p1.Runs) != 2 || p1.Runs[0].ID != ids[2] || resp.NextPage != 2 ||
		!strings.Contains(resp.Header.Get("Link"), `rel="next"`) {
		t.Errorf("page 1: %+v, next %d, Link %q", p1, resp.NextPage, resp.Header.Get("Link"))
	}
	p2, resp, err := list("buildbots.yml", url.Values{"per_page": {"2"}, "page": {"2"}})
	must(t, err)
	if p2.Total != 3 || len(p2.Runs) != 1 || p2.Runs[0].ID != ids[0] || resp.Header.Get("Link") != "" {
		t.Errorf("page 2: %+v, Link %q", p2, resp.Header.Get("Link"))
	}

	// Unknown workflows are 404 with GitHub's error shape.
	for _, wf := range []string{"no-such.yml", "999999", "buildbots"} {
		_, resp, err := list(wf, nil)
		var ge *github.ErrorResponse
		if !errors.As(err, &ge) || ge.Response.StatusCode != 404 || ge.Message != "Not Found" || ge.DocumentationURL == "" {
			t.Errorf("workflow %q: %v (%v), want 404 Not Found", wf, err, resp)
		}
	}
	_, resp, err = c.Actions.ListWorkflowRunsByFileName(ctx(t), "python", "no-such-repo", "buildbots.yml", nil)
	wantStatus(t, "unknown repo", resp, err, 404)
}
