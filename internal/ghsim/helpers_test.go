package ghsim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
)

const (
	testRepo   = "python/cpython"
	testSecret = "s3cret"
	testToken  = "ghp_test"
)

// newTestServer starts ghsim with python/cpython (an org repo, workflows
// from testdata) and returns it with a go-github client pointed at it.
func newTestServer(t *testing.T, opts Options) (*Server, *github.Client) {
	t.Helper()
	if opts.Tokens == nil {
		opts.Tokens = map[string]string{testToken: "buildfleet-bot"}
	}
	s := New(opts)
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.CreateRepo(RepoSpec{Owner: "python", Name: "cpython", Org: true, WorkflowsDir: "testdata"}); err != nil {
		t.Fatal(err)
	}
	return s, newClient(t, base, testToken)
}

func newClient(t *testing.T, base, token string) *github.Client {
	t.Helper()
	c := github.NewClient(nil).WithAuthToken(token)
	u, err := url.Parse(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	c.BaseURL = u
	return c
}

// hookSink is a webhook receiver that checks signatures and keeps what
// arrived.
type hookSink struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	got  []received
	wake chan struct{}
	code int
}

type received struct {
	Event, GUID, HookID, Sig256, Sig1, UA string
	Body                                  []byte
	Payload                               map[string]any
}

func (r received) action() string { a, _ := r.Payload["action"].(string); return a }

func newHookSink(t *testing.T) *hookSink {
	h := &hookSink{t: t, wake: make(chan struct{}, 1000), code: http.StatusAccepted}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := received{
			Event: r.Header.Get("X-GitHub-Event"), GUID: r.Header.Get("X-GitHub-Delivery"),
			HookID: r.Header.Get("X-GitHub-Hook-ID"), Sig256: r.Header.Get("X-Hub-Signature-256"),
			Sig1: r.Header.Get("X-Hub-Signature"), UA: r.Header.Get("User-Agent"), Body: body,
		}
		if err := json.Unmarshal(body, &rec.Payload); err != nil {
			t.Errorf("webhook body is not JSON: %v", err)
		}
		h.mu.Lock()
		h.got = append(h.got, rec)
		code := h.code
		h.mu.Unlock()
		h.wake <- struct{}{}
		w.WriteHeader(code)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookSink) all() []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]received(nil), h.got...)
}

// waitFor waits until a delivery of event (and action, if non-empty)
// matching ok has arrived, and returns it.
func (h *hookSink) waitFor(event, action string, ok func(received) bool) received {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		for _, r := range h.all() {
			if r.Event == event && (action == "" || r.action() == action) && (ok == nil || ok(r)) {
				return r
			}
		}
		select {
		case <-h.wake:
		case <-deadline:
			h.t.Fatalf("no %s.%s webhook arrived; got %d deliveries", event, action, len(h.all()))
		}
	}
}

// eventually polls cond for up to 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
