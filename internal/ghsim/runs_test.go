package ghsim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"
)

const builders = `[{"name":"linux-x86_64-quick","labels":["self-hosted","buildfleet","linux","x86_64","quick"]},` +
	`{"name":"macos-arm64-quick","labels":["self-hosted","buildfleet","macos","arm64","quick"]}]`

func buildbotsInputs(sha string) map[string]any {
	return map[string]any{"pr": "7", "sha": sha, "tier": "quick", "request_id": "req-42", "builders": builders}
}

// dispatchRaw sends a dispatch with return_run_details, which go-github v60
// does not know, and returns the decoded 200 body.
func dispatchRaw(t *testing.T, c *github.Client, file string, inputs map[string]any) (map[string]any, *github.Response, error) {
	t.Helper()
	body := map[string]any{"ref": "main", "inputs": inputs, "return_run_details": true}
	req, err := c.NewRequest("POST", "repos/"+testRepo+"/actions/workflows/"+file+"/dispatches", body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	resp, err := c.Do(ctx(t), req, &out)
	return out, resp, err
}

func jitConfig(t *testing.T, c *github.Client, name string, labels ...string) string {
	t.Helper()
	jit, _, err := c.Actions.GenerateRepoJITConfig(ctx(t), "python", "cpython", &github.GenerateJITConfigRequest{
		Name: name, RunnerGroupID: 1, Labels: labels,
	})
	if err != nil {
		t.Fatal(err)
	}
	return jit.GetEncodedJITConfig()
}

func TestDispatchMatrixRunsOnRunners(t *testing.T) {
	s, c := newTestServer(t, Options{})
	sink := newHookSink(t)
	if _, err := s.AddHook(testRepo, sink.srv.URL, testSecret, nil); err != nil {
		t.Fatal(err)
	}
	sha := strings.Repeat("ab", 20)
	out, resp, err := dispatchRaw(t, c, "buildbots.yml", buildbotsInputs(sha))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("dispatch: %v %v", resp, err)
	}
	runID := int64(out["workflow_run_id"].(float64))
	ru, _, err := c.Actions.GetWorkflowRunByID(ctx(t), "python", "cpython", runID)
	if err != nil {
		t.Fatal(err)
	}
	if got := ru.GetDisplayTitle(); got != "buildbots req-42 PR #7 (quick)" {
		t.Errorf("display_title = %q", got)
	}
	jobs, _, err := c.Actions.ListWorkflowJobs(ctx(t), "python", "cpython", runID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if jobs.GetTotalCount() != 2 {
		t.Fatalf("want 2 jobs, got %d", jobs.GetTotalCount())
	}
	j0 := jobs.Jobs[0]
	if j0.GetName() != "linux-x86_64-quick" || strings.Join(j0.Labels, ",") != "self-hosted,buildfleet,linux,x86_64,quick" {
		t.Errorf("job 0 = %q %v", j0.GetName(), j0.Labels)
	}
	q := sink.waitFor("workflow_job", "queued", nil)
	wj := q.Payload["workflow_job"].(map[string]any)
	if wj["runner_name"] != nil || wj["runner_id"] != nil || wj["head_sha"] != s.repoHead(t) {
		t.Errorf("queued job: runner_name=%v runner_id=%v head_sha=%v", wj["runner_name"], wj["runner_id"], wj["head_sha"])
	}

	// A runner lacking a label gets nothing; one with a superset (any case) gets the job.
	wrong := jitConfig(t, c, "wrong", "self-hosted", "buildfleet", "linux", "x86_64")
	right := jitConfig(t, c, "right", "Self-Hosted", "buildfleet", "linux", "x86_64", "quick", "extra")
	if err := RunRunner(ctx(t), RunnerOptions{JITConfig: right, Out: testWriter{t}}); err != nil {
		t.Fatal(err)
	}
	if err := RunRunner(ctx(t), RunnerOptions{JITConfig: wrong, Out: testWriter{t}, MaxWait: 300e6}); err == nil {
		t.Error("a runner without the quick label got a job")
	}
	done := sink.waitFor("workflow_job", "completed", func(r received) bool {
		return r.Payload["workflow_job"].(map[string]any)["name"] == "linux-x86_64-quick"
	})
	wj = done.Payload["workflow_job"].(map[string]any)
	if wj["conclusion"] != "success" || wj["runner_name"] != "right" {
		t.Errorf("completed job: conclusion=%v runner=%v", wj["conclusion"], wj["runner_name"])
	}
	sink.waitFor("workflow_job", "in_progress", nil)
	sink.waitFor("workflow_run", "in_progress", nil)

	// The log page shows the step output with the env evaluated.
	page := get(t, wj["html_url"].(string)+"?raw=1")
	if !strings.Contains(page, "building PR 7 at "+sha+" tier quick on linux-x86_64-quick") || !strings.Contains(page, "step-linux-x86_64-quick") {
		t.Errorf("log page:\n%s", page)
	}
	// Ephemeral: the runner is gone.
	rs, _, err := c.Actions.ListRunners(ctx(t), "python", "cpython", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs.Runners {
		if r.GetName() == "right" {
			t.Error("runner right still registered after its job")
		}
	}

	// The second job fails on purpose via env? No: it runs with a mac runner.
	mac := jitConfig(t, c, "mac", "self-hosted", "buildfleet", "macos", "arm64", "quick")
	if err := RunRunner(ctx(t), RunnerOptions{JITConfig: mac, Out: testWriter{t}}); err != nil {
		t.Fatal(err)
	}
	rc := sink.waitFor("workflow_run", "completed", nil)
	if got := rc.Payload["workflow_run"].(map[string]any)["conclusion"]; got != "success" {
		t.Errorf("run conclusion = %v", got)
	}
}

func (s *Server) repoHead(t *testing.T) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, err := s.repoByName(testRepo)
	if err != nil {
		t.Fatal(err)
	}
	return rp.HeadSHA
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestJITConfigSingleUse(t *testing.T) {
	s, c := newTestServer(t, Options{JobDuration: 1})
	cfg := jitConfig(t, c, "once", "self-hosted", "linux")
	if _, err := s.Dispatch(testRepo, "needs.yml", nil, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := RunRunner(ctx(t), RunnerOptions{JITConfig: cfg, Out: testWriter{t}}); err != nil {
		t.Fatalf("first use: %v", err)
	}
	err := RunRunner(ctx(t), RunnerOptions{JITConfig: cfg, Out: testWriter{t}})
	if err == nil {
		t.Fatal("second use of a JIT config succeeded")
	}
	// The runner was deleted after its job, so the second use finds nothing.
	t.Log(err)

	// A config redeemed but still registered answers 409.
	cfg2 := jitConfig(t, c, "twice", "nomatch")
	dec, err := DecodeJITConfig(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := RunnerToken(ctx(t), http.DefaultClient, dec)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"runner_id": dec.AgentID})
	for i, want := range []int{200, 409} {
		req, _ := http.NewRequest(http.MethodPost, serverOf(dec)+"/_ghsim/runner/redeem", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("redemption %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	_, _, err = c.Actions.GenerateRepoJITConfig(ctx(t), "python", "cpython", &github.GenerateJITConfigRequest{Name: "twice", RunnerGroupID: 1, Labels: []string{"x"}})
	var ge *github.ErrorResponse
	if !errors.As(err, &ge) || ge.Response.StatusCode != 409 {
		t.Errorf("duplicate runner name: %v, want 409", err)
	}
}
