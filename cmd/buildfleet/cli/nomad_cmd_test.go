package cli

import (
	"strings"
	"testing"

	"github.com/buildfleet/buildfleet/internal/nomadtest"
)

func TestNomadRender(t *testing.T) {
	code, out, errs := run(t, nil, "--config", example, "nomad", "render")
	if code != 0 {
		t.Fatalf("render: exit %d: %s", code, errs)
	}
	if n := strings.Count(out, "parameterized {"); n != 7 {
		t.Errorf("%d jobs rendered, want one per example pool (7)", n)
	}
	code, out, errs = run(t, nil, "--config", example, "nomad", "render", "--format", "json",
		"--pool", "freebsd-x86_64-quick", "--runner-command", "/bin/echo", "--runner-arg", "hi")
	if code != 0 || !strings.Contains(out, `"RTarget": "freebsd"`) || !strings.Contains(out, `"/bin/echo"`) {
		t.Errorf("render json: exit %d, %s\n%s", code, errs, out)
	}
	if code, _, errs = run(t, nil, "--config", example, "nomad", "render", "--pool", "nope"); code != 2 || !strings.Contains(errs, "no pool") {
		t.Errorf("unknown pool: exit %d, %s", code, errs)
	}
}

func TestNomadApply(t *testing.T) {
	ag := nomadtest.Start(t, nomadtest.Options{ACL: true})
	env := []string{"BUILDFLEET_NOMAD_ADDRESS=" + ag.Addr, "BUILDFLEET_NOMAD_NAMESPACE=default", "NOMAD_TOKEN=" + ag.Token,
		"BUILDFLEET_NOMAD_CA_FILE=", "BUILDFLEET_NOMAD_CLIENT_CERT_FILE=", "BUILDFLEET_NOMAD_CLIENT_KEY_FILE=", "BUILDFLEET_NOMAD_TLS_SERVER_NAME="}
	code, out, errs := run(t, env, "--config", example, "nomad", "apply", "--ghsim", "/usr/local/bin/ghsim")
	if code != 0 {
		t.Fatalf("apply: exit %d: %s", code, errs)
	}
	if n := strings.Count(out, " added, policy "); n != 7 {
		t.Errorf("first apply:\n%s", out)
	}
	code, out, errs = run(t, env, "--config", example, "nomad", "apply", "--ghsim", "/usr/local/bin/ghsim")
	if code != 0 || strings.Count(out, "unchanged, policy buildfleet-pool-") != 7 || strings.Contains(out, "added") {
		t.Errorf("second apply: exit %d %s\n%s", code, errs, out)
	}
	code, out, _ = run(t, env, "--config", example, "nomad", "apply", "--pool", "linux-x86_64-quick")
	if code != 0 || !strings.Contains(out, "job runner-linux-x86_64-quick edited") {
		t.Errorf("apply with another runner command: exit %d\n%s", code, out)
	}
}
