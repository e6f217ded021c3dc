package ghsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// A runner that takes a job and then falls silent (killed: no complete,
// no heartbeat) is noticed as GitHub notices it: the job fails, the
// runner shows offline and idle, and its registration can be deleted.
// A runner that redeemed its config and fell silent before taking a job
// shows offline too.
func TestSilentRunnerLosesItsJob(t *testing.T) {
	s, c := newTestServer(t, Options{RunnerLostAfter: 300 * time.Millisecond, JobDuration: time.Hour})
	sink := newHookSink(t)
	if _, err := s.AddHook(testRepo, sink.srv.URL, testSecret, []string{"workflow_job"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Dispatch(testRepo, "needs.yml", nil, "alice"); err != nil {
		t.Fatal(err)
	}
	call := func(tok, op string, body map[string]any, out any) int {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/_ghsim/runner/"+op, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil && resp.StatusCode == 200 {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	start := func(name string, labels ...string) (JITConfig, string, string) {
		t.Helper()
		dec, err := DecodeJITConfig(jitConfig(t, c, name, labels...))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := RunnerToken(ctx(t), http.DefaultClient, dec)
		if err != nil {
			t.Fatal(err)
		}
		var red struct{ Session string }
		if code := call(tok, "redeem", map[string]any{"runner_id": dec.AgentID}, &red); code != 200 {
			t.Fatalf("redeem: %d", code)
		}
		return dec, tok, red.Session
	}
	busy, tok, sess := start("busy", "self-hosted", "linux")
	var spec JobSpec
	if code := call(tok, "acquire", map[string]any{"runner_id": busy.AgentID, "session": sess, "wait_ms": 5000}, &spec); code != 200 {
		t.Fatalf("acquire: %d", code)
	}
	idle, _, _ := start("idle", "nomatch")

	// The runner is killed here: it calls no more.
	done := sink.waitFor("workflow_job", "completed", nil)
	wj := done.Payload["workflow_job"].(map[string]any)
	if wj["conclusion"] != "failure" || int64(wj["id"].(float64)) != spec.JobID {
		t.Errorf("completed %v conclusion %v, want job %d failed", wj["id"], wj["conclusion"], spec.JobID)
	}
	if page := get(t, wj["html_url"].(string)+"?raw=1"); !bytes.Contains([]byte(page), []byte("lost communication with the server")) {
		t.Errorf("log page does not say why:\n%s", page)
	}
	for _, id := range []int64{busy.AgentID, idle.AgentID} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			rn, _, err := c.Actions.GetRunner(ctx(t), "python", "cpython", id)
			if err != nil {
				t.Fatal(err)
			}
			if rn.GetStatus() == "offline" && !rn.GetBusy() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("runner %s: status %s busy %v, want offline and idle", rn.GetName(), rn.GetStatus(), rn.GetBusy())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := c.Actions.RemoveRunner(ctx(t), "python", "cpython", id); err != nil {
			t.Errorf("deleting the silent runner %d: %v", id, err)
		}
	}
	// A runner whose long poll stays open is in contact: it stays online
	// for the whole poll, many times RunnerLostAfter.
	alive, tok2, sess2 := start("alive", "nomatch")
	polled := make(chan int, 1)
	go func() {
		polled <- call(tok2, "acquire", map[string]any{"runner_id": alive.AgentID, "session": sess2, "wait_ms": 2000}, nil)
	}()
	for reads := 0; ; reads++ {
		select {
		case code := <-polled:
			if code != 204 || reads == 0 {
				t.Errorf("acquire with no job: %d after %d reads, want 204", code, reads)
			}
			return
		default:
		}
		rn, _, err := c.Actions.GetRunner(ctx(t), "python", "cpython", alive.AgentID)
		if err != nil || rn.GetStatus() != "online" {
			t.Fatalf("a runner with a long poll open: %v %v, want online", rn.GetStatus(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
