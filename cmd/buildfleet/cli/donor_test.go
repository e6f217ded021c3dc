package cli

import (
	"strings"
	"testing"
)

func TestDonorConfig(t *testing.T) {
	donorArgs := []string{"donor", "config", "--platform", "linux-x86_64", "--tiers", "quick,refleak",
		"--slots", "2", "--owner", "Jane Doe", "--contact", "jane@example.org"}
	longRefleak := strings.Replace(readExample(t), "job_timeout: 4h", "job_timeout: 6h15m", 1)
	tests := []struct {
		name      string
		env       []string
		args      []string
		code      int
		want, not []string
	}{
		{
			name: "servers given",
			args: append(donorArgs, "--servers", "a.example.org:4647,b.example.org:4647"),
			want: []string{`servers = ["a.example.org:4647", "b.example.org:4647"]`, `deadline           = "5h"`,
				`node_pool = "buildfleet-linux-x86_64"`, `buildfleet_tiers     = "quick,refleak"`, `node_max_allocs = 2`},
		},
		{
			name: "servers and deadline from config",
			args: append([]string{"--config", example}, donorArgs...),
			want: []string{`servers = ["nomad.example.org:4647"]`, `deadline           = "5h"`},
		},
		{
			name: "deadline follows the longest refleak timeout",
			args: append([]string{"--config", writeFile(t, "long.yaml", longRefleak)}, donorArgs...),
			want: []string{`deadline           = "7h15m"`},
		},
		{
			name: "config from the environment",
			env:  []string{"BUILDFLEET_CONFIG=" + example},
			args: donorArgs,
			want: []string{`servers = ["nomad.example.org:4647"]`},
		},
		{
			name: "docker on linux, named node in a pool",
			args: append(donorArgs, "--servers", "10.0.0.1:4647", "--driver", "docker", "--node-pool", "fast", "--name", "box-1", "--datacenter", "ams1"),
			want: []string{`plugin "docker"`, `node_pool = "fast"`, `name       = "box-1"`, `datacenter = "ams1"`},
			not:  []string{`plugin "raw_exec"`},
		},
		{
			name: "windows",
			args: []string{"donor", "config", "--platform", "windows-x86_64", "--tiers", "quick", "--slots", "1",
				"--owner", "PSF", "--contact", "https://example.org/contact", "--servers", "10.0.0.1:4647"},
			want: []string{`data_dir   = "C:\\ProgramData\\nomad\\data"`, `plugin "raw_exec"`},
		},
		{
			name: "no servers",
			args: donorArgs,
			code: 2,
			want: []string{"--servers: is required"},
		},
		{
			name: "every bad flag is named",
			args: []string{"donor", "config", "--platform", "beos-x86_64", "--tiers", "quick,Refleak", "--slots", "65",
				"--contact", "nobody", "--driver", "podman", "--servers", "nomad"},
			code: 2,
			want: []string{`--platform: unknown os "beos"`, `--tiers: "Refleak" is not a tier name`, "--slots: must be 1..64, got 65",
				"--owner: is required", `--contact: "nobody"`, `--driver: must be raw_exec, exec or docker, got "podman"`, `--servers: "nomad" is not host:port`},
		},
		{
			name: "docker off linux",
			args: []string{"donor", "config", "--platform", "macos-arm64", "--tiers", "quick", "--slots", "1",
				"--owner", "x", "--contact", "x@example.org", "--servers", "10.0.0.1:4647", "--driver", "docker"},
			code: 2,
			want: []string{"--driver: docker is offered on Linux hosts only"},
		},
		{
			name: "unknown tier and Go's arch name, without a config",
			args: []string{"donor", "config", "--platform", "linux-amd64", "--tiers", "quik", "--slots", "1",
				"--owner", "x", "--contact", "x@example.org", "--servers", "10.0.0.1:4647"},
			code: 2,
			want: []string{`--platform: unknown arch "amd64" in "linux-amd64"`, `--tiers: unknown tier "quik" (known: quick, refleak)`},
		},
		{
			name: "tier no pool of the platform builds, with the config",
			args: []string{"--config", example, "donor", "config", "--platform", "macos-arm64", "--tiers", "quick,refleak", "--slots", "1",
				"--owner", "x", "--contact", "x@example.org"},
			code: 2,
			want: []string{`--tiers: unknown tier "refleak" (known: quick)`},
		},
		{
			name: "platform no pool builds, with the config",
			args: []string{"--config", example, "donor", "config", "--platform", "freebsd-aarch64", "--tiers", "quick", "--slots", "1",
				"--owner", "x", "--contact", "x@example.org"},
			code: 2,
			want: []string{`--platform: no pool of the fleet config builds on freebsd-aarch64`},
		},
		{
			name: "driver the pools do not use, with the config",
			args: append([]string{"--config", example}, append(donorArgs, "--driver", "docker")...),
			code: 2,
			want: []string{`--driver: pool linux-x86_64-quick runs its runners with`},
		},
		{
			name: "config without GitHub credentials",
			args: append([]string{"--config", writeFile(t, "nosecrets.yaml", withoutSecrets(t))}, donorArgs...),
			want: []string{`servers = ["nomad.example.org:4647"]`},
		},
		{
			name: "extra argument",
			args: append(donorArgs, "extra"),
			code: 1,
			want: []string{"unknown command"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(t, tt.env, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, errs)
			}
			got := out
			if tt.code != 0 {
				got = errs
				if out != "" {
					t.Errorf("stdout on error: %q", out)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %s:\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("has %s", n)
				}
			}
		})
	}
}

// withoutSecrets is the example config without GitHub credentials, as a
// donor or a maintainer has it.
func withoutSecrets(t *testing.T) string {
	t.Helper()
	var out []string
	skip := false
	for _, l := range strings.Split(readExample(t), "\n") {
		switch {
		case strings.HasPrefix(l, "  app:"):
			skip = true
			continue
		case skip && strings.HasPrefix(l, "    "):
			continue
		case strings.HasPrefix(l, "  webhook_secret_file:"), strings.HasPrefix(l, "    report: checks"):
			continue
		}
		skip = false
		out = append(out, l)
	}
	s := strings.Join(out, "\n")
	if strings.Contains(s, "webhook_secret_file:") || strings.Contains(s, "private_key_file:") {
		t.Fatal("secrets left in the config")
	}
	return s
}

// TestDonorConfigOwnerStaysAString checks the whole path from flag to
// output: an owner full of HCL syntax is one escaped line.
func TestDonorConfigOwnerStaysAString(t *testing.T) {
	owner := "Jane\"\n}\nplugin \"docker\" {}\n${node.unique.name}"
	code, out, errs := run(t, nil, "donor", "config", "--platform", "linux-x86_64", "--tiers", "quick",
		"--slots", "1", "--owner", owner, "--contact", "jane@example.org", "--servers", "10.0.0.1:4647")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := `    buildfleet_owner     = "Jane\"\n}\nplugin \"docker\" {}\n\u0024{node.unique.name}"` + "\n"
	if !strings.Contains(out, want) {
		t.Errorf("owner line not found:\n%s", out)
	}
	if strings.Contains(out, `plugin "docker"`) || strings.Contains(out, "${") {
		t.Errorf("owner escaped its string:\n%s", out)
	}
}
