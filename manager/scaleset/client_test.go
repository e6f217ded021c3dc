package scaleset

import "testing"

func TestConfigRoot(t *testing.T) {
	for api, want := range map[string]string{
		"https://api.github.com/":      "https://github.com",
		"https://api.octo.ghe.com/":    "https://octo.ghe.com",
		"https://ghes.example/api/v3/": "https://ghes.example",
		"http://127.0.0.1:8787/":       "http://127.0.0.1:8787",
	} {
		if got, err := configRoot(api); err != nil || got != want {
			t.Errorf("configRoot(%q) = %q, %v; want %q", api, got, err, want)
		}
	}
	if _, err := configRoot("not a url"); err == nil {
		t.Error("configRoot accepted a non-URL")
	}
}

func TestRoute(t *testing.T) {
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/_services/scalesets/_apis/runtime/runnerscalesets/12/acquirablejobs", "GET _apis/runtime/runnerscalesets/{}/acquirablejobs"},
		{"DELETE", "/tenant/_apis/runtime/runnerscalesets/3/sessions/6f1f0a6e-8c1e-4b8e-9a51-3f0d8f3c2a11", "DELETE _apis/runtime/runnerscalesets/{}/sessions/{}"},
		{"POST", "/api/v3/repos/python/cpython/actions/runners/registration-token", "POST repos/{}/{}/actions/runners/registration-token"},
		{"GET", "/queue/6f1f0a6e-8c1e-4b8e-9a51-3f0d8f3c2a11/messages", "GET messages"},
		{"DELETE", "/queue/x/messages/77", "DELETE messages/{}"},
		{"POST", "/api/v3/actions/runner-registration", "POST actions/runner-registration"},
	} {
		if got := route(tc.method, tc.path); got != tc.want {
			t.Errorf("route(%s %s) = %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}
