package ghsim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/actions/actions-runner-controller/github/actions"
	"github.com/google/go-github/v60/github"
)

// These tests drive ghsim's scale-set API with ARC's own client
// (github.com/actions/actions-runner-controller/github/actions), which
// nobody here wrote: its paths, bodies and status codes are the check.

func newARCClient(t *testing.T, base string) *actions.Client {
	t.Helper()
	c, err := actions.NewClient(base+"/"+testRepo, &actions.ActionsAuth{Token: testToken},
		actions.WithRetryMax(2), actions.WithRetryWaitMax(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ssBuilders(labels ...string) string {
	var bs []map[string]any
	for i, l := range labels {
		bs = append(bs, map[string]any{"name": "builder-" + string(rune('a'+i)), "labels": []string{l}})
	}
	b, _ := json.Marshal(bs)
	return string(b)
}

func dispatchBuild(t *testing.T, s *Server, labels ...string) int64 {
	t.Helper()
	id, err := s.Dispatch(testRepo, "buildbots.yml", map[string]any{
		"pr": "1", "sha": "0123456789012345678901234567890123456789", "tier": "quick", "request_id": "r1",
		"builders": ssBuilders(labels...),
	}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// createSet makes the scale set "linux-quick" with that label in the
// default group, as the manager does.
func createSet(t *testing.T, c *actions.Client) *actions.RunnerScaleSet {
	t.Helper()
	g, err := c.GetRunnerGroupByName(ctx(t), "Default")
	if err != nil {
		t.Fatal(err)
	}
	set, err := c.CreateRunnerScaleSet(ctx(t), &actions.RunnerScaleSet{
		Name: "linux-quick", RunnerGroupId: int(g.ID), Labels: []actions.Label{{Type: "System", Name: "linux-quick"}},
		RunnerSetting: actions.RunnerSetting{Ephemeral: true, IsElastic: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// nextJobMessages reads one message and returns its job messages, typed
// by messageType.
func nextJobMessages(t *testing.T, c *actions.Client, se *actions.RunnerScaleSetSession, last int64) (*actions.RunnerScaleSetMessage, []map[string]any) {
	t.Helper()
	m, err := c.GetMessage(ctx(t), se.MessageQueueUrl, se.MessageQueueAccessToken, last)
	if err != nil {
		t.Fatal(err)
	}
	if m == nil {
		t.Fatal("no message before the poll ended")
	}
	if m.MessageType != "RunnerScaleSetJobMessages" || m.Statistics == nil {
		t.Fatalf("message %+v: want RunnerScaleSetJobMessages with statistics", m)
	}
	var body []map[string]any
	if err := json.Unmarshal([]byte(m.Body), &body); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteMessage(ctx(t), se.MessageQueueUrl, se.MessageQueueAccessToken, m.MessageId); err != nil {
		t.Fatal(err)
	}
	return m, body
}

// deleteSession deletes a message session through the client's own
// request builder: ARC v0.27.6's DeleteMessageSession reports GitHub's 204
// as an error (its doSessionRequest only accepts a body).
func deleteSession(t *testing.T, c *actions.Client, setID int, sid string, want int) {
	t.Helper()
	req, err := c.NewActionsServiceRequest(ctx(t), http.MethodDelete,
		"/_apis/runtime/runnerscalesets/"+strconv.Itoa(setID)+"/sessions/"+sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("DELETE session %s: %d, want %d", sid, resp.StatusCode, want)
	}
}

func actionsStatus(err error) int {
	var ae *actions.ActionsError
	if errors.As(err, &ae) {
		return ae.StatusCode
	}
	return 0
}

func TestScaleSetARCClientJobLifecycle(t *testing.T) {
	s, _ := newTestServer(t, Options{JobDuration: time.Millisecond, JobConclusion: "success"})
	c := newARCClient(t, s.URL())

	if got, err := c.GetRunnerScaleSet(ctx(t), 1, "linux-quick"); err != nil || got != nil {
		t.Fatalf("GetRunnerScaleSet before create = %+v, %v; want nil, nil", got, err)
	}
	set := createSet(t, c)
	if set.Id == 0 || set.RunnerGroupName != "Default" || len(set.Labels) != 1 || set.Labels[0].Name != "linux-quick" {
		t.Fatalf("created %+v", set)
	}
	if _, err := c.CreateRunnerScaleSet(ctx(t), &actions.RunnerScaleSet{Name: "linux-quick", RunnerGroupId: 1}); actionsStatus(err) != http.StatusConflict {
		t.Fatalf("second create: %v, want 409", err)
	}
	got, err := c.GetRunnerScaleSet(ctx(t), 1, "linux-quick")
	if err != nil || got == nil || got.Id != set.Id {
		t.Fatalf("GetRunnerScaleSet = %+v, %v", got, err)
	}
	if _, err := c.GetRunnerGroupByName(ctx(t), "no-such-group"); err == nil {
		t.Fatal("unknown runner group found")
	}

	se, err := c.CreateMessageSession(ctx(t), set.Id, "host-1")
	if err != nil {
		t.Fatal(err)
	}
	if se.SessionId == nil || se.MessageQueueUrl == "" || se.MessageQueueAccessToken == "" || se.RunnerScaleSet.Id != set.Id {
		t.Fatalf("session %+v", se)
	}
	if _, err := c.CreateMessageSession(ctx(t), set.Id, "host-2"); actionsStatus(err) != http.StatusConflict {
		t.Fatalf("second session: %v, want 409", err)
	}

	// A job for another label set is not the scale set's; ours is.
	dispatchBuild(t, s, "macos")
	run := dispatchBuild(t, s, "linux-quick")
	m, msgs := nextJobMessages(t, c, se, 0)
	if len(msgs) != 1 || msgs[0]["messageType"] != "JobAvailable" || int64(msgs[0]["workflowRunId"].(float64)) != run ||
		msgs[0]["jobDisplayName"] != "builder-a" || m.Statistics.TotalAvailableJobs != 1 {
		t.Fatalf("first message %+v %v", m, msgs)
	}
	var avail actions.JobAvailable
	b, _ := json.Marshal(msgs[0])
	if err := json.Unmarshal(b, &avail); err != nil || avail.RunnerRequestId == 0 || avail.AcquireJobUrl == "" {
		t.Fatalf("JobAvailable %+v: %v", avail, err)
	}
	list, err := c.GetAcquirableJobs(ctx(t), set.Id)
	if err != nil || list.Count != 1 || list.Jobs[0].RunnerRequestId != avail.RunnerRequestId {
		t.Fatalf("acquirable %+v, %v", list, err)
	}

	// A runner of the set does not take a job the set has not acquired.
	jit, err := c.GenerateJitRunnerConfig(ctx(t), &actions.RunnerScaleSetJitRunnerSetting{Name: "bf-linux-1"}, set.Id)
	if err != nil || jit.Runner == nil || jit.Runner.RunnerScaleSetId != set.Id || jit.EncodedJITConfig == "" {
		t.Fatalf("jit %+v, %v", jit, err)
	}
	if _, err := c.GenerateJitRunnerConfig(ctx(t), &actions.RunnerScaleSetJitRunnerSetting{Name: "bf-linux-1"}, set.Id); actionsStatus(err) != http.StatusConflict {
		t.Fatalf("duplicate runner name: %v, want 409", err)
	}
	err = RunRunner(ctx(t), RunnerOptions{JITConfig: jit.EncodedJITConfig, Out: io.Discard, MaxWait: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("the runner took a job that was not acquired")
	}

	ids, err := c.AcquireJobs(ctx(t), set.Id, se.MessageQueueAccessToken, []int64{avail.RunnerRequestId, 999999})
	if err != nil || len(ids) != 1 || ids[0] != avail.RunnerRequestId {
		t.Fatalf("AcquireJobs = %v, %v", ids, err)
	}
	m, msgs = nextJobMessages(t, c, se, m.MessageId)
	if msgs[0]["messageType"] != "JobAssigned" || m.Statistics.TotalAssignedJobs != 1 || m.Statistics.TotalAvailableJobs != 0 {
		t.Fatalf("after acquire %+v %v", m.Statistics, msgs)
	}
	if list, err := c.GetAcquirableJobs(ctx(t), set.Id); err != nil || list.Count != 0 {
		t.Fatalf("acquirable after acquire %+v, %v", list, err)
	}

	jit2, err := c.GenerateJitRunnerConfig(ctx(t), &actions.RunnerScaleSetJitRunnerSetting{Name: "bf-linux-2"}, set.Id)
	if err != nil {
		t.Fatal(err)
	}
	if err := RunRunner(ctx(t), RunnerOptions{JITConfig: jit2.EncodedJITConfig, Out: io.Discard, MaxWait: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	m, msgs = nextJobMessages(t, c, se, m.MessageId)
	if msgs[0]["messageType"] != "JobStarted" || msgs[0]["runnerName"] != "bf-linux-2" {
		t.Fatalf("third message %v", msgs)
	}
	_, msgs = nextJobMessages(t, c, se, m.MessageId)
	var done actions.JobCompleted
	b, _ = json.Marshal(msgs[0])
	if err := json.Unmarshal(b, &done); err != nil || done.MessageType != "JobCompleted" || done.Result != "succeeded" ||
		done.RunnerName != "bf-linux-2" || done.RunnerRequestId != avail.RunnerRequestId {
		t.Fatalf("JobCompleted %+v: %v", done, err)
	}

	// The runner is gone after its one job (ephemeral); the idle one can be
	// removed through the service.
	if r, err := c.GetRunnerByName(ctx(t), "bf-linux-2"); err != nil || r != nil {
		t.Fatalf("ephemeral runner still there: %+v, %v", r, err)
	}
	if err := c.RemoveRunner(ctx(t), int64(jit.Runner.Id)); err != nil {
		t.Fatal(err)
	}
	deleteSession(t, c, set.Id, se.SessionId.String(), http.StatusNoContent)
	deleteSession(t, c, set.Id, se.SessionId.String(), http.StatusBadRequest)
	if _, err := c.CreateMessageSession(ctx(t), set.Id, "host-2"); err != nil {
		t.Fatalf("a session after the first was deleted: %v", err)
	}
}

func TestScaleSetJobsWaitForASession(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	s.SetScaleSetPollWait(50 * time.Millisecond)
	c := newARCClient(t, s.URL())
	// One job queued before the set exists, one after: both are its.
	dispatchBuild(t, s, "linux-quick")
	set := createSet(t, c)
	dispatchBuild(t, s, "linux-quick")

	// No listener: the jobs wait, and the next session finds them through
	// the statistics and the acquirable list, as ARC's listener does.
	se, err := c.CreateMessageSession(ctx(t), set.Id, "host-1")
	if err != nil {
		t.Fatal(err)
	}
	if se.Statistics.TotalAvailableJobs != 2 {
		t.Fatalf("statistics %+v, want 2 available", se.Statistics)
	}
	list, err := c.GetAcquirableJobs(ctx(t), set.Id)
	if err != nil || list.Count != 2 {
		t.Fatalf("acquirable %+v, %v", list, err)
	}
	if m, err := c.GetMessage(ctx(t), se.MessageQueueUrl, se.MessageQueueAccessToken, 0); err != nil || m != nil {
		t.Fatalf("an empty queue: %+v, %v; want 202 (nil, nil)", m, err)
	}

	// A regular JIT runner with the same label does not take them.
	gh := newClient(t, s.URL(), testToken)
	jit, _, err := gh.Actions.GenerateRepoJITConfig(ctx(t), "python", "cpython", &github.GenerateJITConfigRequest{
		Name: "plain", RunnerGroupID: 1, Labels: []string{"linux-quick"}})
	if err != nil {
		t.Fatal(err)
	}
	err = RunRunner(ctx(t), RunnerOptions{JITConfig: jit.GetEncodedJITConfig(), Out: io.Discard, MaxWait: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("a runner outside the scale set took the set's job")
	}
}

func TestScaleSetFaults(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	s.SetScaleSetPollWait(50 * time.Millisecond)
	c := newARCClient(t, s.URL())
	set := createSet(t, c)
	se, err := c.CreateMessageSession(ctx(t), set.Id, "host-1")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("token expiry", func(t *testing.T) {
		s.ExpireScaleSetTokens()
		_, err := c.GetMessage(ctx(t), se.MessageQueueUrl, se.MessageQueueAccessToken, 0)
		var expired *actions.MessageQueueTokenExpiredError
		if !errors.As(err, &expired) {
			t.Fatalf("GetMessage with an expired token: %v", err)
		}
		fresh, err := c.RefreshMessageSession(ctx(t), set.Id, se.SessionId)
		if err != nil || fresh.MessageQueueAccessToken == se.MessageQueueAccessToken {
			t.Fatalf("refresh: %+v, %v", fresh, err)
		}
		se = fresh
		if _, err := c.GetMessage(ctx(t), se.MessageQueueUrl, se.MessageQueueAccessToken, 0); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("token expiry fault", func(t *testing.T) {
		if err := s.AddFault(Fault{Kind: FaultTokenExpiry, Service: true, Path: "/_queue/", Count: 1}); err != nil {
			t.Fatal(err)
		}
		_, err := c.GetMessage(ctx(t), se.MessageQueueUrl, se.MessageQueueAccessToken, 0)
		var expired *actions.MessageQueueTokenExpiredError
		if !errors.As(err, &expired) {
			t.Fatalf("GetMessage after a token_expiry fault: %v", err)
		}
		if se, err = c.RefreshMessageSession(ctx(t), set.Id, se.SessionId); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("duplicate messages", func(t *testing.T) {
		s.DuplicateScaleSetMessages(1)
		dispatchBuild(t, s, "linux-quick")
		m1, b1 := nextJobMessages(t, c, se, 0)
		m2, b2 := nextJobMessages(t, c, se, m1.MessageId)
		if m1.MessageId == m2.MessageId || b1[0]["runnerRequestId"] != b2[0]["runnerRequestId"] {
			t.Fatalf("want one job message twice under two ids: %v %v", b1, b2)
		}
	})

	t.Run("5xx is retried by the client", func(t *testing.T) {
		if err := s.AddFault(Fault{Kind: FaultServerError, Service: true, Path: "/acquirablejobs$", Count: 1, Status: 503}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetAcquirableJobs(ctx(t), set.Id); err != nil {
			t.Fatalf("one 503 then success: %v", err)
		}
		if err := s.AddFault(Fault{Kind: FaultServerError, Service: true, Path: "/acquirablejobs$", Count: 5, Status: 503}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetAcquirableJobs(ctx(t), set.Id); err == nil {
			t.Fatal("five 503s in a row: no error")
		}
		s.ClearFaults()
	})

	t.Run("session conflict after a crash", func(t *testing.T) {
		c2 := newARCClient(t, s.URL()) // a new process: new admin token
		if _, err := c2.CreateMessageSession(ctx(t), set.Id, "host-2"); actionsStatus(err) != http.StatusConflict {
			t.Fatalf("want 409 while the old session lives: %v", err)
		}
		deleteSession(t, c2, set.Id, se.SessionId.String(), http.StatusNoContent)
		if _, err := c2.CreateMessageSession(ctx(t), set.Id, "host-2"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("bad admin token", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet,
			s.URL()+scaleSetRoot+"/_apis/runtime/runnerscalesets/1", nil)
		req.Header.Set("Authorization", "Bearer nope")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})
}

func TestScaleSetControlAPI(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	post := func(path, body string) map[string]any {
		t.Helper()
		resp, err := http.Post(s.URL()+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d %v", path, resp.StatusCode, v)
		}
		return v
	}
	g := post("/_ghsim/runner-groups", `{"name": "donated"}`)
	c := newARCClient(t, s.URL())
	got, err := c.GetRunnerGroupByName(ctx(t), "donated")
	if err != nil || float64(got.ID) != g["id"] {
		t.Fatalf("group %+v, %v; control API said %v", got, err, g)
	}
	set := createSet(t, c)
	se, err := c.CreateMessageSession(ctx(t), set.Id, "host")
	if err != nil {
		t.Fatal(err)
	}
	post("/_ghsim/scalesets/expire-tokens", `{}`)
	var expired *actions.MessageQueueTokenExpiredError
	if _, err := c.GetMessage(ctx(t), se.MessageQueueUrl, se.MessageQueueAccessToken, 0); !errors.As(err, &expired) {
		t.Fatalf("after expire-tokens: %v", err)
	}
	resp, err := http.Get(s.URL() + "/_ghsim/scalesets")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sets []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&sets); err != nil || len(sets) != 1 || sets[0]["sessionId"] != se.SessionId.String() {
		t.Fatalf("sets %v, %v", sets, err)
	}
}
