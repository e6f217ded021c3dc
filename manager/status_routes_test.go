package manager

import (
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// The status page shares the mux with health, metrics and the webhook:
// each keeps its route, and the page owns only the exact root and its own
// paths.
func TestRoutesServeStatusPage(t *testing.T) {
	var calls atomic.Int64
	gh := fakeGitHub(t, &calls)
	m, err := New(Options{Config: testConfig(t, gh.URL, "http://127.0.0.1:1"), RecoverEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.stop() })
	h := m.routes()
	for _, tc := range []struct {
		method, path string
		code         int
		want         string
	}{
		{"GET", "/", 200, "Recent requests"},
		{"GET", "/pools", 200, "hosts could not be listed"}, // Nomad is down in this test
		{"GET", "/requests/0123456789abcdef", 404, "Not found"},
		{"GET", "/requests/nothex", 404, "Not found"},
		{"GET", "/api/v1/requests", 200, `"requests": []`},
		{"GET", "/api/v1/requests/0123456789abcdef", 404, `"error": "not found"`},
		{"GET", "/static/style.css", 200, "table"},
		{"GET", "/grid", 200, "No requests dispatched yet."},
		{"GET", "/queue", 200, "Nothing waits for a host."},
		{"GET", "/hosts", 200, "hosts could not be listed"}, // Nomad is down in this test
		{"GET", "/summary", 200, "Release status"},
		{"GET", "/builders/nosuch", 404, "Not found"},
		{"GET", "/api/v1/queue", 200, `"queue": []`},
		{"GET", "/healthz", 200, `"ok"`},
		{"GET", "/metrics", 200, "buildfleet_build_info"},
		{"POST", "/webhook", 401, ""},
		{"GET", "/no-such-page", 404, ""},
		{"POST", "/", 405, ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader("{}")))
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s %s = %d, want %d with %q\n%s", tc.method, tc.path, rec.Code, tc.code, tc.want, rec.Body)
		}
		for _, secret := range []string{"ghp_test", "hook"} {
			if tc.code == 200 && tc.path != "/metrics" && strings.Contains(rec.Body.String(), secret) {
				t.Errorf("%s shows secret %q", tc.path, secret)
			}
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d GitHub calls from serving pages, want 0", n)
	}
}
