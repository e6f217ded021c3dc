package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const example = "../../../config/example.yaml"

func run(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Execute(context.Background(), args, env, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readExample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestValidateExample(t *testing.T) {
	code, out, errs := run(t, nil, "config", "validate", example)
	if code != 0 {
		t.Fatalf("validate example: exit %d, stderr %s", code, errs)
	}
	if !strings.Contains(out, "ok") {
		t.Errorf("stdout = %q", out)
	}
	c, err := LoadConfig(LoadOptions{File: example, SkipSecretFiles: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Pools) != 7 || len(c.StablePools("quick")) != 5 || len(c.StablePools("refleak")) != 1 {
		t.Errorf("example fleet: %d pools, %d stable quick, %d stable refleak", len(c.Pools), len(c.StablePools("quick")), len(c.StablePools("refleak")))
	}
	r := c.Repository("python/cpython")
	if r == nil || r.Trigger("🔨 test-with-refleak-buildbots") == nil {
		t.Errorf("example repository or refleak trigger missing: %+v", r)
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	base := readExample(t)
	tests := []struct {
		name, from, to, want string
	}{
		{"unknown top-level key", "listen: 127.0.0.1:8080", "listen: 127.0.0.1:8080\nlisten_adress: x", "listen_adress: unknown key"},
		{"unknown pool key", "    max_runners: 8\n", "    max_runners: 8\n    lables: [x]\n", "pools[0].lables: unknown key"},
		{"unknown nested key", "  level: info", "  level: info\n  colour: true", "log.colour: unknown key"},
		{"empty labels", "labels: [self-hosted, buildfleet, macos, arm64, quick]", "labels: []", "pools[2].labels: must not be empty"},
		{"empty webhook secret", "  webhook_secret_file: /etc/buildfleet/webhook-secret", "  webhook_secret: \"\"", "github.webhook_secret: must not be empty"},
		{"bad duration", "job_timeout: 4h", "job_timeout: forever", "job_timeout"},
		{"bad role", "min_role: triage", "min_role: owner", "min_role: must be one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(base, tt.from) {
				t.Fatalf("example.yaml no longer contains %q", tt.from)
			}
			p := writeFile(t, "bad.yaml", strings.Replace(base, tt.from, tt.to, 1))
			code, _, errs := run(t, nil, "config", "validate", p)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr %s", code, errs)
			}
			if !strings.Contains(errs, tt.want) {
				t.Errorf("stderr = %s\nwant it to contain %q", errs, tt.want)
			}
		})
	}
}

func TestPrecedenceAndRedaction(t *testing.T) {
	secretFile := writeFile(t, "hook", "hook-secret-from-file\n")
	cfg := strings.Replace(readExample(t), "/etc/buildfleet/webhook-secret", secretFile, 1)
	cfg = strings.Replace(cfg, "  app:\n    # The App's numeric ID.\n    id: 123456\n    # The installation ID on the organisation that owns the repositories.\n    installation_id: 7890123\n    # PEM private key of the App; readable by the manager only.\n    private_key_file: /etc/buildfleet/github-app.pem\n", "", 1)
	cfg = strings.ReplaceAll(cfg, "report: checks", "report: status")
	cfg = strings.Replace(cfg, "  token_file: /etc/buildfleet/nomad-token\n", "", 1)
	p := writeFile(t, "c.yaml", cfg)
	env := []string{
		"BUILDFLEET_GITHUB_TOKEN=ghp_from_env_123",
		"BUILDFLEET_STORE_PATH=/tmp/from-env.db",
		"BUILDFLEET_LISTEN=127.0.0.1:9000",
		"BUILDFLEET_NOMAD_TOKEN=nomad-secret-xyz",
		"BUILDFLEET_CACHE=/ignored",      // tooling variable, not a key
		"BUILDFLEET_ACT_RUNNER=/ignored", // the Makefile's, for tests
	}
	code, out, errs := run(t, env, "--config", p, "config", "print")
	if code != 0 {
		t.Fatalf("config print: exit %d: %s", code, errs)
	}
	for _, leak := range []string{"ghp_from_env_123", "hook-secret-from-file", "nomad-secret-xyz"} {
		if strings.Contains(out+errs, leak) {
			t.Errorf("config print leaked a secret %q:\n%s", leak, out)
		}
	}
	for _, want := range []string{"path: /tmp/from-env.db", "listen: 127.0.0.1:9000", "token: REDACTED", "webhook_secret_file: " + secretFile, "job_timeout: 4h0m0s"} {
		if !strings.Contains(out, want) {
			t.Errorf("config print lacks %q:\n%s", want, out)
		}
	}

	c, err := LoadConfig(LoadOptions{File: p, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if c.GitHub.Token.Reveal() != "ghp_from_env_123" || c.GitHub.WebhookSecret.Reveal() != "hook-secret-from-file" {
		t.Errorf("secrets not resolved from env and file")
	}

	// Unknown BUILDFLEET_ variables are typos, not silently ignored.
	code, _, errs = run(t, append(env, "BUILDFLEET_GITHUB_TOKN=x"), "--config", p, "config", "print")
	if code == 0 || !strings.Contains(errs, "BUILDFLEET_GITHUB_TOKN") {
		t.Errorf("typo in env var: exit %d, stderr %s", code, errs)
	}
	// A secret set twice is ambiguous.
	code, _, errs = run(t, append(env, "BUILDFLEET_GITHUB_WEBHOOK_SECRET=x"), "--config", p, "serve")
	if code == 0 || !strings.Contains(errs, "github.webhook_secret") {
		t.Errorf("secret from env and file: exit %d, stderr %s", code, errs)
	}
	// An empty secret file is an error naming the key.
	empty := writeFile(t, "empty", "\n")
	cfg2 := strings.Replace(cfg, secretFile, empty, 1)
	code, _, errs = run(t, env, "--config", writeFile(t, "c2.yaml", cfg2), "serve")
	if code == 0 || !strings.Contains(errs, "github.webhook_secret_file") {
		t.Errorf("empty secret file: exit %d, stderr %s", code, errs)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "buildfleet ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}
