package github

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/internal/testenv"
)

// TestGitHubExamples feeds the typed calls GitHub's own example responses
// from its published OpenAPI description, so the shapes the other tests fake
// are checked against GitHub's, not against our guesses.
func TestGitHubExamples(t *testing.T) {
	dir := testenv.NPMPackage(t, "@octokit/openapi")
	raw, err := os.ReadFile(filepath.Join(dir, "generated", "api.github.com.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Components struct {
			Examples map[string]struct {
				Value json.RawMessage `json:"value"`
			} `json:"examples"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	example := func(name string) json.RawMessage {
		v, ok := spec.Components.Examples[name]
		if !ok || len(v.Value) == 0 {
			t.Fatalf("example %s missing from the OpenAPI description", name)
		}
		return v.Value
	}
	field := func(name string, v any) {
		if err := json.Unmarshal(example(name), v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	routes := map[string]string{
		"GET /repos/o/r/collaborators/u/permission":                  "repository-collaborator-permission-response-if-user-has-admin-permissions",
		"POST /repos/o/r/actions/workflows/buildbots.yml/dispatches": "workflow-dispatch-response",
		"GET /repos/o/r/actions/workflows/buildbots.yml/runs":        "workflow-run-paginated",
		"GET /repos/o/r/actions/runs/30433642":                       "workflow-run",
		"GET /repos/o/r/issues/1347/events":                          "issue-event-for-issue-items",
		"GET /repos/o/r/issues/1347/comments":                        "issue-comment-items",
		"POST /repos/o/r/issues/1347/comments":                       "issue-comment",
		"GET /repos/o/r/pulls/1347":                                  "pull-request",
		"GET /repos/o/r":                                             "full-repository-default-response",
		"GET /search/issues":                                         "issue-search-result-item-paginated",
	}
	e := newTestEnv(t, func(w http.ResponseWriter, r *http.Request, n int) {
		name, ok := routes[r.Method+" "+r.URL.Path]
		if !ok {
			writeJSON(w, 404, `{"message":"Not Found"}`)
			return
		}
		code := 200
		if r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/comments") {
			code = 201
		}
		writeJSON(w, code, string(example(name)))
	})
	ctx := context.Background()

	var perm struct {
		RoleName string `json:"role_name"`
	}
	field(routes["GET /repos/o/r/collaborators/u/permission"], &perm)
	if got, err := e.c.Role(ctx, "o", "r", "u"); err != nil || got != perm.RoleName || got == "" {
		t.Errorf("Role = %q, %v; want %q", got, err, perm.RoleName)
	}

	var disp struct {
		ID      int64  `json:"workflow_run_id"`
		HTMLURL string `json:"html_url"`
	}
	field("workflow-dispatch-response", &disp)
	if d, err := e.c.DispatchWorkflow(ctx, "o", "r", "buildbots.yml", "main", nil); err != nil || d.RunID != disp.ID || d.HTMLURL != disp.HTMLURL || d.RunID == 0 {
		t.Errorf("DispatchWorkflow = %+v, %v; want run %d", d, err, disp.ID)
	}

	var runs struct {
		Runs []struct {
			ID           int64  `json:"id"`
			DisplayTitle string `json:"display_title"`
		} `json:"workflow_runs"`
	}
	field("workflow-run-paginated", &runs)
	if r, err := e.c.FindRun(ctx, "o", "r", "buildbots.yml", runs.Runs[0].DisplayTitle, time.Time{}); err != nil || r.ID != runs.Runs[0].ID {
		t.Errorf("FindRun = %+v, %v; want run %d", r, err, runs.Runs[0].ID)
	}
	if r, err := e.c.GetRun(ctx, "o", "r", 30433642); err != nil || r.ID != 30433642 || r.Status == "" || len(r.HeadSHA) != 40 || r.CreatedAt.IsZero() {
		t.Errorf("GetRun = %+v, %v", r, err)
	}

	// The example's only event is "closed" (carrying a label): not a
	// labeled event.
	if _, _, err := e.c.LastLabeler(ctx, "o", "r", 1347, "label"); !errors.Is(err, ErrNotFound) {
		t.Errorf("LastLabeler on a closed event: err = %v, want ErrNotFound", err)
	}

	var comments []struct {
		ID   int64  `json:"id"`
		Body string `json:"body"`
	}
	field("issue-comment-items", &comments)
	if id, err := e.c.FindComment(ctx, "o", "r", 1347, comments[0].Body); err != nil || id != comments[0].ID {
		t.Errorf("FindComment = %d, %v; want %d", id, err, comments[0].ID)
	}
	if id, err := e.c.Comment(ctx, "o", "r", 1347, "x"); err != nil || id == 0 {
		t.Errorf("Comment = %d, %v", id, err)
	}

	var pr struct {
		Head struct {
			SHA  string `json:"sha"`
			Repo struct {
				FullName string `json:"full_name"`
			} `json:"repo"`
		} `json:"head"`
		Base struct {
			Ref string `json:"ref"`
		} `json:"base"`
		State string `json:"state"`
	}
	field("pull-request", &pr)
	if got, err := e.c.PullRequest(ctx, "o", "r", 1347); err != nil || got.HeadSHA != pr.Head.SHA || got.HeadRepo != pr.Head.Repo.FullName ||
		got.BaseRef != pr.Base.Ref || got.State != pr.State || got.Fork || got.Number != 1347 {
		t.Errorf("PullRequest = %+v, %v", got, err)
	}

	var repo struct {
		DefaultBranch string `json:"default_branch"`
	}
	field("full-repository-default-response", &repo)
	if b, err := e.c.DefaultBranch(ctx, "o", "r"); err != nil || b != repo.DefaultBranch || b == "" {
		t.Errorf("DefaultBranch = %q, %v", b, err)
	}

	var search struct {
		Items []struct {
			Number int `json:"number"`
			Labels []struct {
				Name string `json:"name"`
			} `json:"labels"`
		} `json:"items"`
	}
	field("issue-search-result-item-paginated", &search)
	if got, err := e.c.LabeledOpenPRs(ctx, "o", "r", search.Items[0].Labels[0].Name); err != nil || len(got) != 1 || got[0] != search.Items[0].Number {
		t.Errorf("LabeledOpenPRs = %v, %v; want [%d]", got, err, search.Items[0].Number)
	}
}
