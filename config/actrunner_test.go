package config

import (
	"errors"
	"strings"
	"testing"
)

func TestPoolRunner(t *testing.T) {
	withActRunner := func(c *Config) {
		c.ActRunner = ActRunner{URL: "https://fleet.example.org/runners/", Checksums: "/etc/buildfleet/SHA256SUMS"}
	}
	tests := []struct {
		name       string
		platform   string
		runner     string
		actRunner  bool
		wantRunner string
		wantKey    string // "" = valid
		wantMsg    string
	}{
		{"linux x86_64 runs GitHub's runner", "linux-x86_64", "", false, RunnerActions, "", ""},
		{"macos arm64 runs GitHub's runner", "macos-arm64", "", false, RunnerActions, "", ""},
		{"freebsd runs github-act-runner", "freebsd-x86_64", "", true, RunnerActRunner, "", ""},
		{"linux riscv64 runs github-act-runner", "linux-riscv64", "", true, RunnerActRunner, "", ""},
		{"linux s390x runs github-act-runner", "linux-s390x", "", true, RunnerActRunner, "", ""},
		{"linux ppc64le runs github-act-runner", "linux-ppc64le", "", true, RunnerActRunner, "", ""},
		{"act-runner chosen on linux", "linux-x86_64", RunnerActRunner, true, RunnerActRunner, "", ""},
		{"GitHub's runner asked for on freebsd", "freebsd-x86_64", RunnerActions, true, "", "pools[0].runner", "GitHub ships no runner for freebsd-x86_64"},
		{"act-runner on windows", "windows-x86_64", RunnerActRunner, true, "", "pools[0].runner", "not built for windows"},
		{"unknown runner", "linux-x86_64", "buildbot", false, "", "pools[0].runner", `must be "actions" or "act-runner"`},
		{"act-runner without act_runner", "freebsd-x86_64", "", false, "", "act_runner.checksums", "SHA256SUMS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			c.Pools[0].Platform, c.Pools[0].Runner = tt.platform, tt.runner
			if tt.actRunner {
				withActRunner(&c)
			}
			c.ApplyDefaults()
			err := c.Validate()
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				if c.Pools[0].Runner != tt.wantRunner {
					t.Errorf("runner = %q, want %q", c.Pools[0].Runner, tt.wantRunner)
				}
				return
			}
			var found bool
			for _, e := range unwrapAll(err) {
				var fe *FieldError
				if errors.As(e, &fe) && fe.Key == tt.wantKey && strings.Contains(fe.Msg, tt.wantMsg) {
					found = true
				}
			}
			if !found {
				t.Errorf("Validate() = %v\nwant a FieldError on %q containing %q", err, tt.wantKey, tt.wantMsg)
			}
		})
	}
}

func TestActRunnerURLMustBeAFolder(t *testing.T) {
	c := valid()
	c.Pools[0].Platform, c.Pools[0].Runner = "freebsd-x86_64", ""
	c.ActRunner = ActRunner{URL: "https://fleet.example.org/runners", Checksums: "SHA256SUMS"}
	c.ApplyDefaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "act_runner.url: must end in /") {
		t.Errorf("Validate() = %v, want act_runner.url refused", err)
	}
	if got := ActRunnerArchive("v0.13.0", Platform{Kernel: "freebsd", Arch: "amd64"}); got != "github-act-runner-v0.13.0-freebsd-amd64.tar.gz" {
		t.Errorf("archive name %q", got)
	}
}
