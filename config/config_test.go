package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// valid returns a small valid config to break in table cases.
func valid() Config {
	c := Default()
	c.GitHub.Token = "ghp_test"
	c.GitHub.WebhookSecret = "s3cret"
	c.Repositories = []Repository{{Name: "python/cpython"}}
	c.Pools = []Pool{
		{Name: "linux-quick", Platform: "linux-x86_64", Tier: TierQuick, Labels: []string{"self-hosted", "linux"}, Stable: true},
		{Name: "linux-refleak", Platform: "linux-x86_64", Tier: TierRefleak, Labels: []string{"self-hosted", "refleak"}, Stable: true},
	}
	c.ApplyDefaults()
	return c
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantKey string // "" = valid
		wantMsg string
	}{
		{"valid", func(*Config) {}, "", ""},
		{"empty webhook secret", func(c *Config) { c.GitHub.WebhookSecret = "" }, "github.webhook_secret", "must not be empty"},
		{"webhook secret from file", func(c *Config) { c.GitHub.WebhookSecret = ""; c.GitHub.WebhookSecretFile = "/run/secret" }, "", ""},
		{"no auth", func(c *Config) { c.GitHub.Token = "" }, "github.token", "must not be empty"},
		{"token and app", func(c *Config) { c.GitHub.App = App{ID: 1, InstallationID: 2, PrivateKeyFile: "k.pem"} }, "github.app", "not both"},
		{"app without key", func(c *Config) { c.GitHub.Token = ""; c.GitHub.App = App{ID: 1, InstallationID: 2} }, "github.app.private_key_file", "must not be empty"},
		{"empty labels", func(c *Config) { c.Pools[1].Labels = nil }, "pools[1].labels", "must not be empty"},
		{"bad platform", func(c *Config) { c.Pools[0].Platform = "plan9-mips" }, "pools[0].platform", "unknown os"},
		{"duplicate pool", func(c *Config) { c.Pools[1].Name = c.Pools[0].Name; c.Pools[1].NomadJob = "x" }, "pools[1].name", "listed twice"},
		{"slash in nomad job", func(c *Config) { c.Pools[0].NomadJob = "a/b" }, "pools[0].nomad_job", "no /"},
		{"zero timeout", func(c *Config) { c.Pools[0].JobTimeout = 0 }, "pools[0].job_timeout", "must be positive"},
		{"zero max runners", func(c *Config) { c.Pools[0].MaxRunners = 0 }, "pools[0].max_runners", "at least 1"},
		{"bad repo", func(c *Config) { c.Repositories[0].Name = "cpython" }, "repositories[0].name", "owner/repo"},
		{"bad role", func(c *Config) { c.Repositories[0].Triggers[0].MinRole = "owner" }, "repositories[0].triggers[0].min_role", "must be one of"},
		{"tier without pool", func(c *Config) { c.Repositories[0].Triggers[0].Tier = "nightly" }, "repositories[0].triggers[0].tier", "no pool serves"},
		{"tier without stable pool", func(c *Config) { c.Pools[1].Stable = false }, "repositories[0].triggers[1].tier", "no stable pool"},
		{"checks with token", func(c *Config) { c.Repositories[0].Report = ReportChecks }, "repositories[0].report", "needs github.app"},
		{"bad comment", func(c *Config) { c.Repositories[0].Comment = "always" }, "repositories[0].comment", "must be on_schedule"},
		{"control char in context prefix", func(c *Config) { c.Repositories[0].ContextPrefix = "bb\n/" }, "repositories[0].context_prefix", "control characters"},
		{"long context prefix", func(c *Config) { c.Repositories[0].ContextPrefix = strings.Repeat("x", 65) }, "repositories[0].context_prefix", "at most 64"},
		{"spaced context prefix", func(c *Config) { c.Repositories[0].ContextPrefix = " buildbot/" }, "repositories[0].context_prefix", "spaces"},
		{"long label", func(c *Config) { c.Repositories[0].Triggers[0].Label = strings.Repeat("x", 51) }, "repositories[0].triggers[0].label", "at most 50"},
		{"bad listen", func(c *Config) { c.Listen = "8080" }, "listen", "host:port"},
		{"bad nomad url", func(c *Config) { c.Nomad.Address = "nomad:4646" }, "nomad.address", "http(s) URL"},
		{"bad log format", func(c *Config) { c.Log.Format = "xml" }, "log.format", "text or json"},
		{"zero max failures", func(c *Config) { c.Notify.MaxFailures = 0 }, "notify.max_failures", "at least 1"},
		{"bad notice webhook", func(c *Config) { c.Notify.WebhookURL = "hooks.example.org/x?token=s3cret" }, "notify.webhook_url", "http(s) URL"},
		{"smtp without from", func(c *Config) { c.Notify.SMTP.Address = "smtp.example.org:587" }, "notify.smtp.from", "e-mail address"},
		{"zero wait timeout", func(c *Config) { c.Pools[0].WaitTimeout = 0 }, "pools[0].wait_timeout", "must be positive"},
		{"store retention under an hour", func(c *Config) { c.Store.Retention = Duration(10 * time.Minute) }, "store.retention", "at least 1h"},
		{"negative label scan", func(c *Config) { c.Reconcile.LabelScanEvery = Duration(-time.Second) }, "reconcile.label_scan_every", "must be positive"},
		{"zero write limit", func(c *Config) { c.GitHub.WriteLimits = []WriteLimit{{Requests: 0, Per: Duration(time.Minute)}} }, "github.write_limits[0].requests", "at least 1"},
		{"write limit without window", func(c *Config) { c.GitHub.WriteLimits = []WriteLimit{{Requests: 80}} }, "github.write_limits[0].per", "must be positive"},
		{"bad runner version", func(c *Config) { c.Runner.Version = "v2" }, "runner.version", `"latest" or a release`},
		{"pinned runner without checksums", func(c *Config) { c.Runner.Version = "2.330.0" }, "runner.packages", "needs the SHA-256"},
		{"packages with latest", func(c *Config) {
			c.Runner.Packages = []RunnerPackage{{Platform: "linux-x86_64", SHA256: strings.Repeat("a", 64)}}
		}, "runner.packages", "only a pinned"},
		{"bad pinned checksum", func(c *Config) {
			c.Runner.Version = "2.330.0"
			c.Runner.Packages = []RunnerPackage{{Platform: "linux-x86_64", SHA256: "abc"}}
		}, "runner.packages[0].sha256", "64 hex digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error on %s", tt.wantKey)
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

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestApplyDefaults(t *testing.T) {
	c := valid()
	r := c.Repositories[0]
	if r.ContextPrefix != DefaultContextPrefix {
		t.Errorf("context_prefix defaults to %q, want %q", r.ContextPrefix, DefaultContextPrefix)
	}
	if r.Workflow != "buildbots.yml" || r.Report != ReportStatus || r.Comment != CommentOnSchedule {
		t.Errorf("repository defaults = %+v", r)
	}
	if got := r.Trigger("🔨 test-with-buildbots"); got == nil || got.Tier != TierQuick || got.MinRole != "triage" {
		t.Errorf("default quick trigger = %+v", got)
	}
	if got := r.Trigger("🔨 test-with-buildbots "); got != nil {
		t.Errorf("labels must match exactly; a trailing space matched %+v", got)
	}
	if c.Pools[0].NomadJob != "runner-linux-quick" || c.Pools[1].JobTimeout.D().Hours() != 4 {
		t.Errorf("pool defaults = %+v / %+v", c.Pools[0], c.Pools[1])
	}
	c.GitHub.App = App{ID: 1}
	c.Repositories[0].Report = ""
	c.ApplyDefaults()
	if c.Repositories[0].Report != ReportChecks {
		t.Errorf("with an App, report defaults to %q, want checks", c.Repositories[0].Report)
	}
}

func TestRoles(t *testing.T) {
	tests := []struct {
		role, min string
		want      bool
	}{
		{"admin", "triage", true},
		{"maintain", "triage", true},
		{"write", "triage", true},
		{"triage", "triage", true},
		{"read", "triage", false},
		{"push", "write", true},
		{"pull", "triage", false},
		{"none", "read", false},
		{"", "read", false},
		{"admin", "bogus", false},
	}
	for _, tt := range tests {
		if got := RoleAtLeast(tt.role, tt.min); got != tt.want {
			t.Errorf("RoleAtLeast(%q, %q) = %v, want %v", tt.role, tt.min, got, tt.want)
		}
	}
}

func TestParsePlatform(t *testing.T) {
	tests := map[string]Platform{
		"linux-x86_64":   {"linux-x86_64", "linux", "amd64"},
		"linux-aarch64":  {"linux-aarch64", "linux", "arm64"},
		"linux-arm64":    {"linux-aarch64", "linux", "arm64"},
		"macos-arm64":    {"macos-arm64", "darwin", "arm64"},
		"macos-aarch64":  {"macos-arm64", "darwin", "arm64"},
		"windows-x86_64": {"windows-x86_64", "windows", "amd64"},
		"freebsd-x86_64": {"freebsd-x86_64", "freebsd", "amd64"},
	}
	for in, want := range tests {
		got, err := ParsePlatform(in)
		if err != nil || got != want {
			t.Errorf("ParsePlatform(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"linux", "linux-", "-x86_64", "beos-x86_64", "linux-sparc", "linux-amd64"} {
		if _, err := ParsePlatform(bad); err == nil {
			t.Errorf("ParsePlatform(%q) succeeded", bad)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("ghp_supersecret")
	for _, got := range []string{s.String(), s.GoString(), s.LogValue().String()} {
		if strings.Contains(got, "supersecret") {
			t.Errorf("secret printed: %q", got)
		}
	}
	b, _ := s.MarshalText()
	if strings.Contains(string(b), "supersecret") {
		t.Errorf("secret marshalled: %q", b)
	}
	if s.Reveal() != "ghp_supersecret" {
		t.Error("Reveal lost the value")
	}
}
