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
