package actrunner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildfleet/buildfleet/config"
)

const sums = `0c88d32127ab89411bc6c30785368e891e78a6233866b2e2809df7c213bb313e  github-act-runner-v0.13.0-linux-amd64.tar.gz
1111111111111111111111111111111111111111111111111111111111111111  github-act-runner-v0.13.0-freebsd-amd64.tar.gz
`

func TestLoadAndFor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "SHA256SUMS")
	if err := os.WriteFile(path, []byte(sums), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(config.ActRunner{URL: "https://fleet.example.org/runners/", Checksums: path})
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.For(config.Platform{Kernel: "freebsd", Arch: "amd64"})
	want := Package{URL: "https://fleet.example.org/runners/github-act-runner-v0.13.0-freebsd-amd64.tar.gz",
		SHA256: strings.Repeat("1", 64), Version: "v0.13.0"}
	if err != nil || got != want {
		t.Errorf("For(freebsd/amd64) = %+v, %v; want %+v", got, err, want)
	}
	if _, err := p.For(config.Platform{Kernel: "linux", Arch: "s390x"}); err == nil || !strings.Contains(err.Error(), "linux/s390x") {
		t.Errorf("For(linux/s390x) = %v, want an error naming it", err)
	}
	pools := []config.Pool{{Name: "fbsd", Platform: "freebsd-x86_64", Runner: config.RunnerActRunner},
		{Name: "z", Platform: "linux-s390x", Runner: config.RunnerActRunner}}
	if err := p.Check(pools[:1]); err != nil {
		t.Errorf("Check(fbsd) = %v", err)
	}
	if err := p.Check(pools); err == nil || !strings.Contains(err.Error(), "pool z") {
		t.Errorf("Check(z) = %v, want pool z refused", err)
	}
	if _, err := Load(config.ActRunner{Checksums: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing checksums file loaded")
	}
}

func TestParseRefusesBadLines(t *testing.T) {
	for name, in := range map[string]string{
		"short checksum":   "abc  github-act-runner-v0.13.0-linux-amd64.tar.gz\n",
		"other file":       strings.Repeat("a", 64) + "  actions-runner-linux-x64-2.329.0.tar.gz\n",
		"two for one host": sums + strings.Repeat("2", 64) + "  github-act-runner-v0.14.0-linux-amd64.tar.gz\n",
		"empty":            "\n",
		"upper-case hex":   strings.Repeat("A", 64) + "  github-act-runner-v0.13.0-linux-amd64.tar.gz\n",
	} {
		if _, err := Parse([]byte(in), "https://x/", "SUMS"); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}
