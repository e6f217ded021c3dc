package runnerimages

import (
	"bufio"
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

// checksums reads checksums.txt: file name → sha256.
func checksums(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("checksums.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^([0-9a-f]{64})  (actions-runner-[a-z0-9]+-[a-z0-9]+-\d+\.\d+\.\d+\.(tar\.gz|zip))$`)
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		g := line.FindStringSubmatch(l)
		if g == nil {
			t.Fatalf("checksums.txt: bad line %q", l)
		}
		m[g[2]] = g[1]
	}
	if len(m) == 0 {
		t.Fatal("checksums.txt pins nothing")
	}
	return m
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
	sums := checksums(t)
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
				if _, err := os.Stat(filepath.Join("linux", src)); err != nil {
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
	version := args["RUNNER_VERSION"]
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(version) {
		t.Fatalf("RUNNER_VERSION = %q, want a pinned x.y.z", version)
	}
	for arg, file := range map[string]string{
		"RUNNER_SHA256_AMD64": "actions-runner-linux-x64-" + version + ".tar.gz",
		"RUNNER_SHA256_ARM64": "actions-runner-linux-arm64-" + version + ".tar.gz",
	} {
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(args[arg]) {
			t.Errorf("ARG %s = %q, want a sha256", arg, args[arg])
		}
		if sums[file] != args[arg] {
			t.Errorf("ARG %s = %s, checksums.txt has %q for %s", arg, args[arg], sums[file], file)
		}
	}
	verified := false
	for _, r := range runs {
		if strings.Contains(r, "sha256sum -c") && strings.Contains(r, "RUNNER_VERSION") {
			verified = true
		}
	}
	if !verified {
		t.Error("no RUN downloads the runner and checks it with sha256sum -c")
	}
	if user != "runner" {
		t.Errorf("USER %q, want runner", user)
	}
	var ep []string
	if err := json.Unmarshal([]byte(entrypoint), &ep); err != nil || len(ep) == 0 {
		t.Errorf("ENTRYPOINT %q is not exec form: %v", entrypoint, err)
	}
	for _, pkg := range []string{"build-essential", "gdb", "lcov", "pkg-config", "libbz2-dev", "libffi-dev", "libgdbm-dev",
		"libgdbm-compat-dev", "liblzma-dev", "libncurses5-dev", "libreadline-dev", "libsqlite3-dev", "libssl-dev", "lzma",
		"lzma-dev", "tk-dev", "uuid-dev", "zlib1g-dev", "libzstd-dev", "git", "curl", "ca-certificates", "xvfb"} {
		if !regexp.MustCompile(`(^|\s)` + regexp.QuoteMeta(pkg) + `(\s|$)`).MatchString(strings.Join(runs, " ")) {
			t.Errorf("package %s not installed", pkg)
		}
	}
}

// TestChecksumTablesAgree: the unix and Windows scripts carry their own
// tables (they are copied to hosts alone); each entry must be the one in
// checksums.txt, and every checksums.txt entry of their OS must be there.
func TestChecksumTablesAgree(t *testing.T) {
	sums := checksums(t)
	for _, tc := range []struct {
		path, prefix string
		re           *regexp.Regexp
	}{
		{"unix/run-runner.sh", "actions-runner-(linux|osx)-", regexp.MustCompile(`(?m)^\s*(actions-runner-\S+)\) echo ([0-9a-f]{64}) ;;`)},
		{"windows/run-runner.ps1", "actions-runner-win-", regexp.MustCompile(`(?m)^\s*'(actions-runner-\S+)' = '([0-9a-f]{64})'`)},
	} {
		b, err := os.ReadFile(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]string{}
		for _, m := range tc.re.FindAllStringSubmatch(string(b), -1) {
			found[m[1]] = m[2]
			if sums[m[1]] != m[2] {
				t.Errorf("%s pins %s = %s; checksums.txt has %q", tc.path, m[1], m[2], sums[m[1]])
			}
		}
		for f, s := range sums {
			if regexp.MustCompile("^"+tc.prefix).MatchString(f) && found[f] != s {
				t.Errorf("%s lacks %s from checksums.txt", tc.path, f)
			}
		}
		if len(found) == 0 {
			t.Errorf("%s pins nothing", tc.path)
		}
	}
	// The default versions agree.
	docker, _ := os.ReadFile("linux/Dockerfile")
	unix, _ := os.ReadFile("unix/run-runner.sh")
	ps, _ := os.ReadFile("windows/run-runner.ps1")
	v := regexp.MustCompile(`ARG RUNNER_VERSION=(\S+)`).FindSubmatch(docker)
	if v == nil {
		t.Fatal("no RUNNER_VERSION in Dockerfile")
	}
	if !strings.Contains(string(unix), "DEFAULT_RUNNER_VERSION="+string(v[1])+"\n") {
		t.Errorf("unix/run-runner.sh default version is not %s", v[1])
	}
	if !strings.Contains(string(ps), "else { '"+string(v[1])+"' }") {
		t.Errorf("windows/run-runner.ps1 default version is not %s", v[1])
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
