package ghsim

import (
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"

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
