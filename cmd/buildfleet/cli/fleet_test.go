package cli

import (
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/buildfleet/buildfleet/internal/nomadtest"
)

// TestFleetCommandsNeedNoSecrets runs the commands a donor or a maintainer
// runs with the fleet config but without the manager's GitHub token and
// webhook secret; serve, which uses them, still asks for them.
func TestFleetCommandsNeedNoSecrets(t *testing.T) {
	cfg := writeFile(t, "fleet.yaml", withoutSecrets(t))
	tests := []struct {
		name string
		args []string
		code int
		want string // in stdout+stderr
	}{
		{"nomad render", []string{"nomad", "render", "--pool", "linux-x86_64-quick"}, 0, `node_pool   = "buildfleet-linux-x86_64"`},
		{"lint", []string{"lint", "../../../workflows/quick-demo.yml"}, -1, ""},
		{"status", []string{"status", "--url", "http://127.0.0.1:1"}, 1, "reaching the manager"},
		{"status from the config's listen address", []string{"status"}, 1, "reaching the manager"},
		{"serve asks for them", []string{"serve"}, 1, "github.webhook_secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(t, nil, append([]string{"--config", cfg}, tt.args...)...)
			all := out + errs
			if tt.code >= 0 && code != tt.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tt.code, all)
			}
			if strings.Contains(tt.name, "asks") {
				return
			}
			for _, secret := range []string{"github.token", "github.webhook_secret"} {
				if strings.Contains(all, secret) {
					t.Errorf("asks for %s:\n%s", secret, all)
				}
			}
			if !strings.Contains(all, tt.want) {
				t.Errorf("lacks %q:\n%s", tt.want, all)
			}
		})
	}
}

// TestNomadApplyCreatesWhatJobsNeed applies the example config (namespace
// buildfleet, node pools per platform) to an agent that has neither, over
// mutual TLS configured only through Nomad's own variables: the namespace
// and node pools are created once, then found; a token that may not create
// them gets the exact list an operator must create.
func TestNomadApplyCreatesWhatJobsNeed(t *testing.T) {
	ca := nomadtest.NewCA(t)
	ag := nomadtest.Start(t, nomadtest.Options{ACL: true, TLS: ca})
	cfg := writeFile(t, "fleet.yaml", withoutSecrets(t))
	env := []string{"NOMAD_ADDR=" + ag.Addr, "NOMAD_TOKEN=" + ag.Token, "NOMAD_CACERT=" + ca.CertFile,
		"NOMAD_CLIENT_CERT=" + ag.CLI.CertFile, "NOMAD_CLIENT_KEY=" + ag.CLI.KeyFile}

	// A token that may register jobs but not create namespaces or pools.
	if _, err := ag.Client.ACLPolicies().Upsert(&api.ACLPolicy{Name: "jobs-only",
		Rules: `namespace "*" { policy = "write" }` + "\n" + `node_pool "*" { policy = "read" }`}, nil); err != nil {
		t.Fatal(err)
	}
	tok, _, err := ag.Client.ACLTokens().Create(&api.ACLToken{Name: "jobs", Type: "client", Policies: []string{"jobs-only"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	weak := append(append([]string(nil), env[:1]...), append([]string{"NOMAD_TOKEN=" + tok.SecretID}, env[2:]...)...)
	code, out, errs := run(t, weak, "--config", cfg, "nomad", "apply", "--ghsim", "/usr/local/bin/ghsim")
	if code != 1 {
		t.Fatalf("weak token: exit %d\n%s%s", code, out, errs)
	}
	// The agent's own node pool (buildfleet-linux-x86_64) exists already.
	for _, want := range []string{"nomad namespace apply -description 'buildfleet runner jobs' buildfleet",
		`echo 'node_pool "buildfleet-linux-aarch64" { description = "buildfleet donor hosts" }' | nomad node pool apply -`,
		`node_pool "buildfleet-macos-arm64"`, `node_pool "buildfleet-windows-x86_64"`, `node_pool "buildfleet-freebsd-x86_64"`} {
		if !strings.Contains(errs, want) {
			t.Errorf("weak token: stderr lacks %s:\n%s", want, errs)
		}
	}
	if strings.Contains(out, " added") {
		t.Errorf("weak token registered jobs:\n%s", out)
	}

	code, out, errs = run(t, env, "--config", cfg, "nomad", "apply", "--ghsim", "/usr/local/bin/ghsim")
	if code != 0 {
		t.Fatalf("apply: exit %d: %s\n%s", code, errs, out)
	}
	if strings.Contains(errs, "buildfleet-linux-x86_64") {
		t.Errorf("weak token: asks to create the existing pool:\n%s", errs)
	}
	for _, want := range []string{"namespace buildfleet: created", "node pool buildfleet-linux-x86_64: exists", "node pool buildfleet-macos-arm64: created"} {
		if !strings.Contains(out, want) {
			t.Errorf("first apply lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, " added, policy "); n != 7 {
		t.Errorf("first apply added %d jobs:\n%s", n, out)
	}
	code, out, errs = run(t, env, "--config", cfg, "nomad", "apply", "--ghsim", "/usr/local/bin/ghsim")
	if code != 0 || strings.Contains(out, "created") || strings.Count(out, "unchanged, policy") != 7 ||
		!strings.Contains(out, "namespace buildfleet: exists") {
		t.Errorf("second apply: exit %d %s\n%s", code, errs, out)
	}
	job, _, err := ag.Client.Jobs().Info("runner-linux-x86_64-quick", &api.QueryOptions{Namespace: "buildfleet"})
	if err != nil {
		t.Fatal(err)
	}
	if *job.NodePool != "buildfleet-linux-x86_64" {
		t.Errorf("job node pool %s", *job.NodePool)
	}
}

// TestNomadEnvPrecedence: Nomad's own variables set the nomad keys above
// the file and below BUILDFLEET_NOMAD_*; NOMAD_TOKEN replaces the file's
// token_file.
func TestNomadEnvPrecedence(t *testing.T) {
	file := writeFile(t, "fleet.yaml", withoutSecrets(t))
	env := []string{
		"NOMAD_ADDR=https://nomad-from-env:4646", "NOMAD_TOKEN=tok-from-env", "NOMAD_NAMESPACE=ns-env",
		"NOMAD_REGION=eu", "NOMAD_CACERT=/env/ca.pem", "NOMAD_CLIENT_CERT=/env/cli.pem", "NOMAD_CLIENT_KEY=/env/cli-key.pem",
		"NOMAD_TLS_SERVER_NAME=server.eu.nomad",
	}
	c, err := LoadConfig(LoadOptions{File: file, Env: env, FleetOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	n := c.Nomad
	if n.Address != "https://nomad-from-env:4646" || n.Token.Reveal() != "tok-from-env" || n.TokenFile != "" || n.Namespace != "ns-env" ||
		n.Region != "eu" || n.CAFile != "/env/ca.pem" || n.ClientCertFile != "/env/cli.pem" || n.ClientKeyFile != "/env/cli-key.pem" ||
		n.TLSServerName != "server.eu.nomad" {
		t.Errorf("NOMAD_* over the file: %+v", n)
	}
	c, err = LoadConfig(LoadOptions{File: file, Env: append(env, "BUILDFLEET_NOMAD_ADDRESS=https://bf:4646", "BUILDFLEET_NOMAD_CA_FILE=/bf/ca.pem"), FleetOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Nomad.Address != "https://bf:4646" || c.Nomad.CAFile != "/bf/ca.pem" || c.Nomad.Region != "eu" {
		t.Errorf("BUILDFLEET_NOMAD_* over NOMAD_*: %+v", c.Nomad)
	}
	c, err = LoadConfig(LoadOptions{File: file, FleetOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Nomad.Address != "https://nomad.example.org:4646" || c.Nomad.CAFile != "/etc/buildfleet/nomad-ca.pem" || c.Nomad.TokenFile == "" {
		t.Errorf("file alone: %+v", c.Nomad)
	}
}
