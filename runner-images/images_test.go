package runnerimages

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/buildfleet/buildfleet/internal/testenv"
)

// need returns the path of a tool, failing under make test (strict) and
// skipping otherwise, like internal/testenv does for Nomad.
func need(t *testing.T, tool, hint string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if testenv.Strict() {
			t.Fatalf("%s not found; %s", tool, hint)
		}
		t.Skipf("%s not found; %s (make test provides it)", tool, hint)
	}
	return p
}

func TestShellcheck(t *testing.T) {
	sc := need(t, "shellcheck", "apt-get install shellcheck")
	var scripts []string
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".sh") {
			scripts = append(scripts, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(scripts) < 2 {
		t.Fatalf("found only %v", scripts)
	}
	for _, s := range scripts {
		// POSIX sh, every severity: the scripts run on macOS and FreeBSD too.
		if out, err := exec.Command(sc, "--shell=sh", "--severity=style", s).CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", s, err, out)
		}
	}
}

// dockerfile is a parsed Dockerfile: instructions with continuations joined.
type instruction struct{ cmd, args string }

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{"FROM": true, "ARG": true, "ENV": true, "RUN": true, "COPY": true, "ADD": true, "WORKDIR": true,
		"USER": true, "ENTRYPOINT": true, "CMD": true, "LABEL": true, "EXPOSE": true, "VOLUME": true, "STOPSIGNAL": true,
		"HEALTHCHECK": true, "SHELL": true, "ONBUILD": true}
	var out []instruction
	var cur strings.Builder
	for n, l := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(l)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // comment inside a continued instruction
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\"))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(l)
		full := strings.TrimSpace(cur.String())
		cur.Reset()
		cmd, args, _ := strings.Cut(full, " ")
		if !known[strings.ToUpper(cmd)] || cmd != strings.ToUpper(cmd) {
			t.Fatalf("%s:%d: unknown or lower-case instruction %q", path, n+1, cmd)
		}
		out = append(out, instruction{cmd, strings.TrimSpace(args)})
	}
	if cur.Len() > 0 {
		t.Fatalf("%s: ends inside a continued line", path)
	}
	return out
}

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "linux/Dockerfile")
	args := map[string]string{}
	var from, user, entrypoint string
	var runs []string
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			from = in.args
		case "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "RUN":
			runs = append(runs, in.args)
		case "COPY":
			f := strings.Fields(in.args)
			for _, src := range f[:len(f)-1] {
				if strings.HasPrefix(src, "--") {
					continue
				}
				// The build context is runner-images/.
				if _, err := os.Stat(src); err != nil {
					t.Errorf("COPY source %s: %v", src, err)
				}
			}
		}
	}
	if ins[0].cmd != "FROM" && ins[0].cmd != "ARG" {
		t.Errorf("first instruction is %s", ins[0].cmd)
	}
	if !strings.HasPrefix(from, "debian:bookworm") {
		t.Errorf("FROM %q, want Debian bookworm", from)
	}
	// No runner is built in: the bootstrap fetches the one the manager
	// names, verified, when the container starts.
	for k := range args {
		if strings.HasPrefix(k, "RUNNER_") {
			t.Errorf("ARG %s: the image must not pin a runner", k)
		}
	}
	if user != "runner" {
		t.Errorf("USER %q, want runner", user)
	}
	var ep []string
	if err := json.Unmarshal([]byte(entrypoint), &ep); err != nil || len(ep) == 0 {
		t.Errorf("ENTRYPOINT %q is not exec form: %v", entrypoint, err)
	} else if ep[len(ep)-1] != "/usr/local/bin/buildfleet-run-runner" {
		t.Errorf("ENTRYPOINT %v, want the bootstrap", ep)
	}
	for _, pkg := range []string{"build-essential", "gdb", "lcov", "pkg-config", "libbz2-dev", "libffi-dev", "libgdbm-dev",
		"libgdbm-compat-dev", "liblzma-dev", "libncurses5-dev", "libreadline-dev", "libsqlite3-dev", "libssl-dev", "lzma",
		"lzma-dev", "tk-dev", "uuid-dev", "zlib1g-dev", "libzstd-dev", "git", "curl", "ca-certificates", "xvfb"} {
		if !regexp.MustCompile(`(^|\s)` + regexp.QuoteMeta(pkg) + `(\s|$)`).MatchString(strings.Join(runs, " ")) {
			t.Errorf("package %s not installed", pkg)
		}
	}
}

// TestNoRunnerPinned: no runner version or checksum of GitHub's platforms
// is written down anywhere in the repository (outside tests): GitHub
// refuses runners that lag a release by 30 days, so a table would break
// the fleet within weeks. The manager asks GitHub instead.
func TestNoRunnerPinned(t *testing.T) {
	out, err := exec.Command("git", "-C", "..", "ls-files").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	archive := regexp.MustCompile(`actions-runner-(linux|osx|win)-(x64|arm64|arm)-[0-9]+\.[0-9]+\.[0-9]+`)
	sum := regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	version := regexp.MustCompile(`(?i)(RUNNER_VERSION|runner_version|version)\s*[=:]\s*['"]?2\.[0-9]{3}\.[0-9]+`)
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasSuffix(f, "_test.go") || strings.Contains(f, "/testdata/") || strings.HasSuffix(f, "go.sum") ||
			strings.HasPrefix(f, "runner-images/act-runner/") ||
			strings.HasPrefix(f, "internal/ghsim/") { // the simulator's own releases, not GitHub's

			continue
		}
		b, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			continue // deleted in the work tree
		}
		text := string(b)
		if m := archive.FindString(text); m != "" {
			t.Errorf("%s names a runner release archive: %s", f, m)
		}
		if m := version.FindString(text); m != "" {
			t.Errorf("%s pins a runner version: %s", f, m)
		}
		if strings.Contains(text, "actions-runner") && sum.MatchString(text) {
			t.Errorf("%s holds a SHA-256 next to the runner: %s", f, sum.FindString(text))
		}
	}
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
