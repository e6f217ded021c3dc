package manager

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildfleet/buildfleet/config"
)

// The manager reads act_runner's checksums only when a pool runs
// github-act-runner, and will not start when that pool's platform has no
// archive listed.
func TestLoadActRunner(t *testing.T) {
	sums := filepath.Join(t.TempDir(), "SHA256SUMS")
	if err := os.WriteFile(sums, []byte(strings.Repeat("0", 64)+"  github-act-runner-v0.13.0-freebsd-amd64.tar.gz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	linux := config.Pool{Name: "l", Platform: "linux-x86_64", Runner: config.RunnerActions}
	bsd := config.Pool{Name: "b", Platform: "freebsd-x86_64", Runner: config.RunnerActRunner}
	s390 := config.Pool{Name: "z", Platform: "linux-s390x", Runner: config.RunnerActRunner}
	act := config.ActRunner{URL: "https://fleet.example.org/r/", Checksums: sums}
	if p, err := loadActRunner(config.Config{Pools: []config.Pool{linux}}); p != nil || err != nil {
		t.Errorf("no act-runner pool: %v, %v; want nothing loaded", p, err)
	}
	if p, err := loadActRunner(config.Config{Pools: []config.Pool{linux, bsd}, ActRunner: act}); p == nil || err != nil {
		t.Errorf("freebsd pool: %v, %v; want the archives", p, err)
	}
	if _, err := loadActRunner(config.Config{Pools: []config.Pool{bsd, s390}, ActRunner: act}); err == nil || !strings.Contains(err.Error(), "pool z") {
		t.Errorf("s390x pool without an archive: %v, want refused", err)
	}
}
