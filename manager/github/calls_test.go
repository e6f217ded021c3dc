package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRemoveLabelEncoding(t *testing.T) {
	tests := []struct {
		label, wantPath string
	}{
		{"🔨 test-with-buildbots", "/repos/o/r/issues/5/labels/%F0%9F%94%A8%20test-with-buildbots"},
		{"a/b", "/repos/o/r/issues/5/labels/a%2Fb"},
		{"50% #1: x?", "/repos/o/r/issues/5/labels/50%25%20%231:%20x%3F"},
		{"plain", "/repos/o/r/issues/5/labels/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			e := newTestEnv(t, func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 200, `[]`)
			})
			if err := e.c.RemoveLabel(context.Background(), "o", "r", 5, tt.label); err != nil {
				t.Fatal(err)
			}
			reqs := e.gh.Requests()
			if len(reqs) != 1 || reqs[0].Method != "DELETE" || reqs[0].EscapedPath != tt.wantPath || reqs[0].Query != "" {
				t.Fatalf("sent %+v, want DELETE %s", reqs, tt.wantPath)
			}
			seg := reqs[0].EscapedPath[strings.LastIndex(reqs[0].EscapedPath, "/")+1:]
			if got, _ := url.PathUnescape(seg); got != tt.label {
				t.Errorf("last segment decodes to %q, want %q", got, tt.label)
			}
			if got := e.metric(t, "buildfleet_github_requests_total", map[string]string{"endpoint": "DELETE /repos/{}/{}/issues/{}/labels/{}"}); got != 1 {
				t.Errorf("the call is not counted under the label route (got %v)", got)
			}
		})
	}
}

// TestGoGitHubLabelPath records why RemoveLabel builds its own path:
// go-github v60 puts the label into the path unescaped.
func TestGoGitHubLabelPath(t *testing.T) {
	e := newTestEnv(t, func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 404, `{"message":"Not Found"}`) })
	_, _ = e.c.REST().Issues.RemoveLabelForIssue(context.Background(), "o", "r", 5, "a/b")
	if reqs := e.gh.Requests(); len(reqs) != 1 || reqs[0].EscapedPath != "/repos/o/r/issues/5/labels/a/b" {
		t.Fatalf("go-github sent %+v; if it escapes labels now, RemoveLabel may use it", reqs)
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name string
		code int
		body string
		want error
	}{
		{"404 label gone", 404, `{"message":"Label does not exist","documentation_url":"https://docs.github.com/rest/issues/labels#remove-a-label-from-an-issue"}`, ErrNotFound},
		{"422 invalid", 422, `{"message":"Validation Failed","errors":[{"resource":"Label","field":"name","code":"invalid"}]}`, ErrInvalid},
		{"409 conflict", 409, `{"message":"Conflict"}`, ErrConflict},
		{"429", 429, `{"message":"Too Many Requests"}`, ErrRateLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, tt.code, tt.body) },
				func(o *Options) { o.Retry.MaxAttempts = 1 })
			err := e.c.RemoveLabel(context.Background(), "o", "r", 5, "x")
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var ge *Error
			if !errors.As(err, &ge) || ge.Status != tt.code {
				t.Fatalf("err = %#v, want *Error with status %d", err, tt.code)
			}
			if tt.code == 422 && !strings.Contains(err.Error(), "Validation Failed") {
				t.Errorf("422 error %q lacks GitHub's message", err)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}

func TestRole(t *testing.T) {
	tests := []struct {
		name, body string
		code       int
		want       string
		wantErr    error
	}{
		{"role_name is finer than permission", `{"permission":"write","role_name":"maintain","user":{"login":"u"}}`, 200, "maintain", nil},
		{"triage", `{"permission":"read","role_name":"triage","user":{"login":"u"}}`, 200, "triage", nil},
		{"no role_name falls back to permission", `{"permission":"admin","user":{"login":"u"}}`, 200, "admin", nil},
		{"unknown user", `{"message":"nobody is not a user","documentation_url":"https://docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user"}`, 404, "", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, tt.code, tt.body) })
			got, err := e.c.Role(context.Background(), "o", "r", "u")
			if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Role = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
			if p := e.gh.Requests()[0].EscapedPath; p != "/repos/o/r/collaborators/u/permission" {
				t.Errorf("path %s", p)
			}
		})
	}
}

func TestDispatchWorkflow(t *testing.T) {
	inputs := map[string]string{"pr": "7", "sha": strings.Repeat("a", 40), "tier": "quick", "request_id": "R1", "builders": `["linux"]`}
	details := `{"workflow_run_id":42,"run_url":"https://api.example/repos/o/r/actions/runs/42","html_url":"https://web.example/o/r/actions/runs/42"}`
	rejected := `{"message":"Invalid request.\n\n\"return_run_details\" is not a permitted key.","documentation_url":"https://docs.github.com/enterprise-server@3.19/rest/actions/workflows#create-a-workflow-dispatch-event"}`
	tests := []struct {
		name        string
		answers     []answer
		want        Dispatch
		wantErr     error
		wantDetails []bool // return_run_details per call
		remembered  bool
	}{
		{"200 with run details", []answer{{200, nil, details}},
			Dispatch{RunID: 42, RunURL: "https://api.example/repos/o/r/actions/runs/42", HTMLURL: "https://web.example/o/r/actions/runs/42"}, nil, []bool{true}, false},
		{"204 without details", []answer{{204, nil, ``}}, Dispatch{}, nil, []bool{true}, false},
		{"400 falls back once and remembers", []answer{{400, nil, rejected}, {204, nil, ``}}, Dispatch{}, nil, []bool{true, false}, true},
		{"422 naming the field falls back", []answer{{422, nil, `{"message":"Invalid input: return_run_details is not permitted"}`}, {204, nil, ``}}, Dispatch{}, nil, []bool{true, false}, true},
		{"other 422 is the caller's", []answer{{422, nil, `{"message":"Workflow does not have 'workflow_dispatch' trigger"}`}}, Dispatch{}, ErrInvalid, []bool{true}, false},
		{"400 twice is an error, not remembered", []answer{{400, nil, rejected}, {400, nil, `{"message":"Problems parsing JSON"}`}}, Dispatch{}, errAny, []bool{true, false}, false},
		{"5xx is not retried", []answer{{502, nil, ``}}, Dispatch{}, errAny, []bool{true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var clock *fakeClock
			e := newTestEnv(t, scripted(t, tt.answers, &clock))
			clock = e.clock
			got, err := e.c.DispatchWorkflow(context.Background(), "o", "r", "buildbots.yml", "main", inputs)
			switch {
			case tt.wantErr == errAny && err == nil, tt.wantErr == nil && err != nil,
				tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Dispatch = %+v, want %+v", got, tt.want)
			}
			reqs := e.gh.Requests()
			if len(reqs) != len(tt.wantDetails) {
				t.Fatalf("%d calls, want %d", len(reqs), len(tt.wantDetails))
			}
			for i, r := range reqs {
				if r.Method != "POST" || r.EscapedPath != "/repos/o/r/actions/workflows/buildbots.yml/dispatches" {
					t.Errorf("call %d: %s %s", i+1, r.Method, r.EscapedPath)
				}
				var body map[string]any
				if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
					t.Fatalf("call %d body %q: %v", i+1, r.Body, err)
				}
				_, has := body["return_run_details"]
				if has != tt.wantDetails[i] || (has && body["return_run_details"] != true) {
					t.Errorf("call %d: body %s, want return_run_details=%v", i+1, r.Body, tt.wantDetails[i])
				}
				if body["ref"] != "main" || fmt.Sprint(body["inputs"].(map[string]any)["sha"]) != inputs["sha"] {
					t.Errorf("call %d: body %s", i+1, r.Body)
				}
			}
			if e.c.noRunDetails.Load() != tt.remembered {
				t.Errorf("remembered = %v, want %v", e.c.noRunDetails.Load(), tt.remembered)
			}
		})
	}
}

// errAny stands for "some error" in tables.
var errAny = errors.New("any error")

func TestDispatchRemembersMissingFeature(t *testing.T) {
	var clock *fakeClock
	e := newTestEnv(t, scripted(t, []answer{{400, nil, `{"message":"Invalid request."}`}, {204, nil, ``}, {204, nil, ``}}, &clock))
	clock = e.clock
	for range 2 {
		if _, err := e.c.DispatchWorkflow(context.Background(), "o", "r", "b.yml", "main", nil); err != nil {
			t.Fatal(err)
		}
	}
	reqs := e.gh.Requests()
	if len(reqs) != 3 || strings.Contains(reqs[2].Body, "return_run_details") {
		t.Fatalf("calls %+v: the second dispatch must not ask again", reqs)
	}
}

// pages serves a JSON list in pages of size n with GitHub's Link header.
func pages(w http.ResponseWriter, r *http.Request, items []string, n int) {
	page := 1
	fmt.Sscan(r.URL.Query().Get("page"), &page)
	lo, hi := (page-1)*n, page*n
	if hi >= len(items) {
		hi = len(items)
	} else {
		q := r.URL.Query()
		q.Set("page", fmt.Sprint(page+1))
		w.Header().Set("Link", fmt.Sprintf(`<http://%s%s?%s>; rel="next"`, r.Host, r.URL.Path, q.Encode()))
	}
	if lo > hi {
		lo = hi
	}
	writeJSON(w, 200, "["+strings.Join(items[lo:hi], ",")+"]")
}

func TestFindComment(t *testing.T) {
	var items []string
	for i := 1; i <= 5; i++ {
		body := fmt.Sprintf("comment %d", i)
		if i == 4 {
			body = "scheduled\n<!-- buildfleet:request=R9 -->"
		}
		b, _ := json.Marshal(body)
		items = append(items, fmt.Sprintf(`{"id":%d,"body":%s,"user":{"login":"bot"}}`, 100+i, b))
	}
	e := newTestEnv(t, func(w http.ResponseWriter, r *http.Request, n int) { pages(w, r, items, 2) })
	id, err := e.c.FindComment(context.Background(), "o", "r", 3, "<!-- buildfleet:request=R9 -->")
	if err != nil || id != 104 {
		t.Fatalf("FindComment = %d, %v; want 104", id, err)
	}
	if n := len(e.gh.Requests()); n != 2 {
		t.Errorf("%d calls, want 2 (stop at the page with the marker)", n)
	}
	_, err = e.c.FindComment(context.Background(), "o", "r", 3, "<!-- buildfleet:request=R10 -->")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing marker: err = %v", err)
	}
}

func TestLastLabeler(t *testing.T) {
	ev := func(id int, event, label, actor, at string) string {
		return fmt.Sprintf(`{"id":%d,"node_id":"x","url":"u","actor":{"login":%q},"event":%q,"commit_id":null,"commit_url":null,"created_at":%q,"performed_via_github_app":null,"label":{"name":%q,"color":"ededed"}}`,
			id, actor, event, at, label)
	}
	items := []string{
		ev(1, "labeled", "🔨 test-with-buildbots", "alice", "2026-01-01T10:00:00Z"),
		ev(2, "unlabeled", "🔨 test-with-buildbots", "bot", "2026-01-01T10:01:00Z"),
		ev(3, "labeled", "🔨 test-with-buildbots", "bob", "2026-01-02T10:00:00Z"),
		ev(4, "labeled", "🔨 test-with-buildbots-extra", "carol", "2026-01-03T10:00:00Z"),
		ev(5, "labeled", "other", "dave", "2026-01-04T10:00:00Z"),
	}
	e := newTestEnv(t, func(w http.ResponseWriter, r *http.Request, n int) { pages(w, r, items, 2) })
	who, at, err := e.c.LastLabeler(context.Background(), "o", "r", 3, "🔨 test-with-buildbots")
	if err != nil || who != "bob" || !at.Equal(time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("LastLabeler = %q, %v, %v; want bob", who, at, err)
	}
	if n := len(e.gh.Requests()); n != 3 {
		t.Errorf("%d calls, want 3 pages", n)
	}
	if _, _, err := e.c.LastLabeler(context.Background(), "o", "r", 3, "never"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown label: err = %v", err)
	}
}

func TestLabeledOpenPRs(t *testing.T) {
	item := func(n int, pr bool, labels ...string) string {
		var ls []string
		for _, l := range labels {
			b, _ := json.Marshal(l)
			ls = append(ls, fmt.Sprintf(`{"name":%s}`, b))
		}
		s := fmt.Sprintf(`{"number":%d,"state":"open","labels":[%s]`, n, strings.Join(ls, ","))
		if pr {
			s += `,"pull_request":{"url":"u"}`
		}
		return s + "}"
	}
	label := `🔨 test "with" buildbots`
	var queries []string
	e := newTestEnv(t, func(w http.ResponseWriter, r *http.Request, n int) {
		queries = append(queries, r.URL.Query().Get("q"))
		if n == 1 {
			w.Header().Set("Link", fmt.Sprintf(`<http://%s/search/issues?q=x&page=2>; rel="next"`, r.Host))
			writeJSON(w, 200, `{"total_count":3,"incomplete_results":false,"items":[`+item(7, true, label)+","+item(8, true, "🔨 test")+`]}`)
			return
		}
		writeJSON(w, 200, `{"total_count":3,"incomplete_results":false,"items":[`+item(9, true, "x", label)+","+item(10, false, label)+`]}`)
	})
	got, err := e.c.LabeledOpenPRs(context.Background(), "o", "r", label)
	if err != nil || fmt.Sprint(got) != "[7 9]" {
		t.Fatalf("LabeledOpenPRs = %v, %v; want [7 9]", got, err)
	}
	want := `repo:o/r is:pr is:open label:"🔨 test \"with\" buildbots"`
	if len(queries) != 2 || queries[0] != want {
		t.Errorf("queries %q, want 2 pages of %q", queries, want)
	}
	if p := e.gh.Requests()[0].EscapedPath; p != "/search/issues" {
		t.Errorf("path %s", p)
	}
}

func TestPullRequestAndDefaultBranch(t *testing.T) {
	pr := func(head string) string {
		h := `null`
		if head != "" {
			h = fmt.Sprintf(`{"full_name":%q}`, head)
		}
		return fmt.Sprintf(`{"number":7,"state":"closed","merged":true,"head":{"ref":"f","sha":"%s","repo":%s},"base":{"ref":"main","sha":"b","repo":{"full_name":"O/R"}}}`, strings.Repeat("c", 40), h)
	}
	tests := []struct {
		name, body string
		want       PullRequest
	}{
		{"same repository", pr("o/r"), PullRequest{7, "closed", true, strings.Repeat("c", 40), "o/r", false, "main"}},
		{"fork", pr("someone/r"), PullRequest{7, "closed", true, strings.Repeat("c", 40), "someone/r", true, "main"}},
		{"deleted fork", pr(""), PullRequest{7, "closed", true, strings.Repeat("c", 40), "", true, "main"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, tt.body) })
			got, err := e.c.PullRequest(context.Background(), "o", "r", 7)
			if err != nil || got != tt.want {
				t.Fatalf("PullRequest = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	e := newTestEnv(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path != "/repos/o/r" {
			writeJSON(w, 404, `{"message":"Not Found"}`)
			return
		}
		writeJSON(w, 200, `{"id":1,"full_name":"o/r","default_branch":"trunk"}`)
	})
	if b, err := e.c.DefaultBranch(context.Background(), "o", "r"); err != nil || b != "trunk" {
		t.Fatalf("DefaultBranch = %q, %v", b, err)
	}
	if _, err := e.c.PullRequest(context.Background(), "o", "r", 99); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing PR: err = %v", err)
	}
}

func TestRuns(t *testing.T) {
	since := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	run := func(id int, title, created string) string {
		return fmt.Sprintf(`{"id":%d,"name":"buildbots","display_title":%q,"event":"workflow_dispatch","status":"queued","conclusion":null,"head_sha":"%s","html_url":"https://web.example/o/r/actions/runs/%d","created_at":%q}`,
			id, title, strings.Repeat("d", 40), id, created)
	}
	runs := []string{
		run(30, "quick #7 R3", "2026-02-01T10:02:00Z"),
		run(20, "quick #7 R2", "2026-02-01T10:01:00Z"),
		run(10, "quick #7 R1", "2026-01-01T10:00:00Z"), // before since: a server that ignores created
	}
	e := newTestEnv(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/runs") && r.Method == "GET":
			page := 1
			fmt.Sscan(r.URL.Query().Get("page"), &page)
			if page == 1 {
				w.Header().Set("Link", fmt.Sprintf(`<http://%s%s?page=2>; rel="next"`, r.Host, r.URL.Path))
				writeJSON(w, 200, `{"total_count":3,"workflow_runs":[`+runs[0]+`]}`)
				return
			}
			writeJSON(w, 200, `{"total_count":3,"workflow_runs":[`+runs[1]+","+runs[2]+`]}`)
		case r.URL.Path == "/repos/o/r/actions/runs/20":
			writeJSON(w, 200, runs[1])
		case r.URL.Path == "/repos/o/r/actions/runs/20/cancel":
			writeJSON(w, 202, `{}`)
		case r.URL.Path == "/repos/o/r/actions/runs/30/cancel":
			writeJSON(w, 409, `{"message":"Cannot cancel a workflow run that is completed.","documentation_url":"https://docs.github.com/rest/actions/workflow-runs#cancel-a-workflow-run"}`)
		default:
			writeJSON(w, 404, `{"message":"Not Found"}`)
		}
	})
	ctx := context.Background()
	got, err := e.c.FindRun(ctx, "o", "r", "buildbots.yml", "R2", since)
	if err != nil || got.ID != 20 || got.DisplayTitle != "quick #7 R2" || got.Status != "queued" {
		t.Fatalf("FindRun = %+v, %v", got, err)
	}
	q, _ := url.ParseQuery(e.gh.Requests()[0].Query)
	if q.Get("event") != "workflow_dispatch" || q.Get("created") != ">=2026-02-01T00:00:00Z" || e.gh.Requests()[0].EscapedPath != "/repos/o/r/actions/workflows/buildbots.yml/runs" {
		t.Errorf("list call %+v", e.gh.Requests()[0])
	}
	if _, err := e.c.FindRun(ctx, "o", "r", "buildbots.yml", "R1", since); !errors.Is(err, ErrNotFound) {
		t.Errorf("run created before since: err = %v, want ErrNotFound", err)
	}
	if r, err := e.c.GetRun(ctx, "o", "r", 20); err != nil || r.ID != 20 || r.HeadSHA != strings.Repeat("d", 40) {
		t.Errorf("GetRun = %+v, %v", r, err)
	}
	if err := e.c.CancelRun(ctx, "o", "r", 20); err != nil {
		t.Errorf("CancelRun 202: %v", err)
	}
	if err := e.c.CancelRun(ctx, "o", "r", 30); !errors.Is(err, ErrConflict) {
		t.Errorf("CancelRun 409: err = %v, want ErrConflict", err)
	}
}

func TestCommentAndEdit(t *testing.T) {
	e := newTestEnv(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case r.Method == "POST" && r.URL.Path == "/repos/o/r/issues/7/comments":
			writeJSON(w, 201, `{"id":555,"body":"x"}`)
		case r.Method == "PATCH" && r.URL.Path == "/repos/o/r/issues/comments/555":
			if n == 2 {
				writeJSON(w, 502, `{"message":"Server Error"}`) // PATCH is retried
				return
			}
			writeJSON(w, 200, `{"id":555,"body":"y"}`)
		default:
			writeJSON(w, 404, `{"message":"Not Found"}`)
		}
	})
	id, err := e.c.Comment(context.Background(), "o", "r", 7, "x")
	if err != nil || id != 555 {
		t.Fatalf("Comment = %d, %v", id, err)
	}
	if err := e.c.EditComment(context.Background(), "o", "r", 555, "y"); err != nil {
		t.Fatal(err)
	}
	reqs := e.gh.Requests()
	if len(reqs) != 3 || reqs[1].Body != reqs[2].Body || !strings.Contains(reqs[2].Body, `"body":"y"`) {
		t.Fatalf("calls %+v", reqs)
	}
}
