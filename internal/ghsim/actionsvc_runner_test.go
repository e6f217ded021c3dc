package ghsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/buildfleet/buildfleet/internal/testenv"
)

// lockedBuffer collects a process's output for the test's log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runActRunner runs github-act-runner with a JIT config in a fresh folder
// until it exits, and returns its exit error and output.
func runActRunner(t *testing.T, bin, jit string, env ...string) (string, error) {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(c, bin, "run", "--jitconfig", jit)
	cmd.Dir = t.TempDir()
	cmd.Env = append([]string{"HOME=" + cmd.Dir, "PATH=/usr/local/bin:/usr/bin:/bin"}, env...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return out.String(), err
}

// TestActRunnerTakesJob runs github-act-runner, a runner nobody here wrote,
// against ghsim: it redeems the JIT config, authorizes with its key, takes
// the job through a message session, runs the run: steps on the host,
// reports steps and logs, and completes with the job's real conclusion.
func TestActRunnerTakesJob(t *testing.T) {
	bin := testenv.ActRunnerBinary(t)
	for _, tc := range []struct {
		name, fail, conclusion string
		faults                 []Fault
	}{
		{name: "success", fail: "no", conclusion: "success"},
		{name: "failing step", fail: "yes", conclusion: "failure"},
		{name: "service faults", fail: "no", conclusion: "success", faults: []Fault{
			{Kind: FaultTokenExpiry, Service: true, Path: "/messages$", Count: 1},
			// A lost batch of live lines: the page then shows the uploaded log.
			{Kind: FaultServerError, Service: true, Path: "/feed$", Count: 1, Status: 503},
			{Kind: FaultLatency, Service: true, Path: "/events$", Count: 1, Latency: "300ms"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c := newTestServer(t, Options{})
			sink := newHookSink(t)
			if _, err := s.AddHook(testRepo, sink.srv.URL, testSecret, nil); err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.faults {
				if err := s.AddFault(f); err != nil {
					t.Fatal(err)
				}
			}
			if _, resp, err := dispatchRaw(t, c, "realrunner.yml", map[string]any{"fail": tc.fail}); err != nil || resp.StatusCode != 200 {
				t.Fatalf("dispatch: %v %v", resp, err)
			}
			jit := jitConfig(t, c, "act-"+tc.fail, "realrunner", "self-hosted")
			out, err := runActRunner(t, bin, jit)
			t.Logf("github-act-runner output:\n%s", out)
			if err != nil {
				t.Fatalf("github-act-runner: %v", err)
			}
			done := sink.waitFor("workflow_job", "completed", nil)
			wj := done.Payload["workflow_job"].(map[string]any)
			if wj["conclusion"] != tc.conclusion || wj["runner_name"] != "act-"+tc.fail {
				t.Errorf("completed job: conclusion=%v runner=%v, want %s by act-%s", wj["conclusion"], wj["runner_name"], tc.conclusion, tc.fail)
			}
			steps := map[string]string{}
			for _, st := range wj["steps"].([]any) {
				m := st.(map[string]any)
				steps[m["name"].(string)], _ = m["conclusion"].(string)
			}
			// github-act-runner reports the failing step itself as
			// succeeded (act's host executor); the job's result and the
			// skipped step after it are right.
			wantAfter := map[string]string{"success": "success", "failure": "skipped"}[tc.conclusion]
			if steps["Greet"] != "success" || steps["After"] != wantAfter {
				t.Errorf("steps = %v", steps)
			}
			page := get(t, wj["html_url"].(string)+"?raw=1")
			for _, want := range []string{"hello from the real runner, step env step-" + tc.fail, map[string]string{"yes": "failing on purpose", "no": "not failing"}[tc.fail]} {
				if !strings.Contains(page, want) {
					t.Errorf("log page lacks %q:\n%s", want, page)
				}
			}
			if tc.conclusion == "success" && !strings.Contains(page, "after step ran") {
				t.Errorf("log page lacks the last step:\n%s", page)
			}
			// Ephemeral: the runner is gone, and its JIT config with it.
			if rs, _, err := c.Actions.ListRunners(ctx(t), "python", "cpython", nil); err != nil || rs.TotalCount != 0 {
				t.Errorf("runners after the job: %v %v", rs, err)
			}
			// A rule with a count is dropped once it fired that often.
			for _, f := range s.faults.list() {
				t.Errorf("fault %s on %s did not fire", f.Kind, f.Path)
			}
		})
	}
}

// A run cancelled while github-act-runner runs its job reaches the runner
// as a JobCancellation message: the runner stops the step and completes
// the job as cancelled, long before the step would have ended.
func TestActRunnerJobCancelled(t *testing.T) {
	bin := testenv.ActRunnerBinary(t)
	s, c := newTestServer(t, Options{})
	sink := newHookSink(t)
	if _, err := s.AddHook(testRepo, sink.srv.URL, testSecret, nil); err != nil {
		t.Fatal(err)
	}
	out, _, err := dispatchRaw(t, c, "realrunner.yml", map[string]any{"fail": "sleep"})
	if err != nil {
		t.Fatal(err)
	}
	runID := int64(out["workflow_run_id"].(float64))
	jit := jitConfig(t, c, "act-cancel", "realrunner", "self-hosted")
	done := make(chan string, 1)
	go func() {
		out, err := runActRunner(t, bin, jit)
		done <- fmt.Sprintf("%v\n%s", err, out)
	}()
	// Cancel once the sleeping step has started.
	eventually(t, "the sleeping step running", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, j := range s.st.runs[runID].Jobs {
			if strings.Contains(j.Log.String(), "sleeping until cancelled") {
				return true
			}
		}
		return false
	})
	// 202 Accepted, which go-github reports as an AcceptedError.
	var accepted *github.AcceptedError
	if _, err := c.Actions.CancelWorkflowRunByID(ctx(t), "python", "cpython", runID); !errors.As(err, &accepted) {
		t.Fatalf("cancel: %v, want 202", err)
	}
	select {
	case out := <-done:
		t.Logf("github-act-runner: %s", out)
	case <-time.After(90 * time.Second):
		t.Fatal("github-act-runner did not stop after the run was cancelled")
	}
	wj := sink.waitFor("workflow_job", "completed", nil).Payload["workflow_job"].(map[string]any)
	if wj["conclusion"] != "cancelled" {
		t.Errorf("job conclusion %v, want cancelled", wj["conclusion"])
	}
	if rc := sink.waitFor("workflow_run", "completed", nil).Payload["workflow_run"].(map[string]any); rc["conclusion"] != "cancelled" {
		t.Errorf("run conclusion %v, want cancelled", rc["conclusion"])
	}
}

// A runner below the minimum version gets GitHub's deprecation message when
// it opens its message session, as the stand-in does.
func TestRunnerSessionRefusesOutdated(t *testing.T) {
	s, c := newTestServer(t, Options{})
	dec, err := DecodeJITConfig(jitConfig(t, c, "old", "x"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := RunnerToken(ctx(t), http.DefaultClient, dec)
	if err != nil {
		t.Fatal(err)
	}
	open := func(version string) (int, string) {
		body := fmt.Sprintf(`{"ownerName":"RUNNER","agent":{"id":%d,"name":"old","version":%q}}`, dec.AgentID, version)
		req, _ := http.NewRequest(http.MethodPost, dec.ServerURL+"_apis/distributedtask/pools/1/sessions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	s.SetMinRunnerVersion("2.330.0")
	if code, body := open("2.329.0"); code != http.StatusForbidden || !strings.Contains(body, "Runner version v2.329.0 is deprecated and cannot receive messages.") {
		t.Errorf("outdated runner: %d %s", code, body)
	}
	if code, body := open("3.0.0"); code != http.StatusOK || !strings.Contains(body, `"sessionId"`) {
		t.Errorf("current runner: %d %s", code, body)
	}
}
