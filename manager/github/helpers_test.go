package github

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/buildfleet/buildfleet/config"
)

const testToken = "ghp_testtokenthatmustneverleak"

// fakeClock is the time seam: Sleep advances Now at once and records the
// waits, so tests assert what was waited without waiting.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func newFakeClock() *fakeClock {
	// Start at the real time: go-github compares rate-limit resets with
	// time.Now, and the tests must see what it would do in production.
	return &fakeClock{now: time.Now().Truncate(time.Second)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	f.slept = append(f.slept, d)
	return nil
}

func (f *fakeClock) Slept() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.slept...)
}

// seen is one request as the fake GitHub received it.
type seen struct {
	Method, EscapedPath, Query, Auth, Body string
}

// fakeGitHub is an httptest server that records requests and answers with
// the handler of the test.
type fakeGitHub struct {
	mu   sync.Mutex
	reqs []seen
	srv  *httptest.Server
}

func (f *fakeGitHub) Requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

type testEnv struct {
	gh    *fakeGitHub
	c     *Client
	clock *fakeClock
	reg   *prometheus.Registry
}

// newTestEnv starts a fake GitHub answering with h (n is the 1-based
// number of the request) and a Client on it with a fake clock.
func newTestEnv(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int), mod ...func(*Options)) *testEnv {
	t.Helper()
	f := &fakeGitHub{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		if r.Body != nil {
			buf := make([]byte, 1<<16)
			for {
				n, err := r.Body.Read(buf)
				b.Write(buf[:n])
				if err != nil {
					break
				}
			}
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), b.String()})
		n := len(f.reqs)
		f.mu.Unlock()
		h(w, r, n)
	}))
	t.Cleanup(f.srv.Close)
	clock := newFakeClock()
	reg := prometheus.NewRegistry()
	o := Options{
		Registerer: reg,
		Retry:      Retry{RateLimitBase: 3 * time.Millisecond, ErrorBase: time.Millisecond, Now: clock.Now, Sleep: clock.Sleep},
	}
	for _, m := range mod {
		m(&o)
	}
	c, err := New(config.GitHub{APIURL: f.srv.URL + "/", Token: testToken}, o)
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{gh: f, c: c, clock: clock, reg: reg}
}

// metric returns the value of a counter or gauge with the given labels
// (all of them), or 0.
func (e *testEnv) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			if m.Counter != nil {
				sum += m.GetCounter().GetValue()
			}
			if m.Gauge != nil {
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func writeJSON(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}
