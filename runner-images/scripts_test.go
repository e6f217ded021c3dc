package runnerimages

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// secret stands for a JIT config: it must reach run.sh's environment (as
// ACTIONS_RUNNER_INPUT_JITCONFIG) and nowhere else.
const secret = "eyJKSVQiOiJzM2NyM3QtZm9yLXRlc3RzIn0="

// fixture is a fake runner release served from a file:// URL, with a stub
// uname so the script sees Linux x86_64 (or what a test says).
type fixture struct {
	dir, task, cache, jit, sums string
	env                         []string
}

// fakeRunSh records its arguments and environment, prints something, and
// exits 0; tests replace it to fail or wait for a signal.
const fakeRunSh = `#!/bin/sh
printf '%s\n' "$@" > "$OUT/args"
env > "$OUT/env"
pwd > "$OUT/pwd"
echo "runner: listening for jobs"
`

func newFixture(t *testing.T, version, runSh string) *fixture {
	t.Helper()
	need(t, "sh", "a POSIX shell")
	need(t, "curl", "apt-get install curl")
	need(t, "tar", "apt-get install tar")
	dir := t.TempDir()
	f := &fixture{
		dir:   dir,
		task:  filepath.Join(dir, "task"),
		cache: filepath.Join(dir, "cache"),
		jit:   filepath.Join(dir, "secrets", "jit"),
		sums:  filepath.Join(dir, "checksums.txt"),
	}
	bin := filepath.Join(dir, "bin")
	for _, d := range []string{bin, f.task, filepath.Dir(f.jit), filepath.Join(dir, "srv", "v"+version), filepath.Join(dir, "out")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(bin, "uname"), "#!/bin/sh\ncase \"$1\" in -s) echo \"${FAKE_UNAME_S:-Linux}\" ;; -m) echo \"${FAKE_UNAME_M:-x86_64}\" ;; *) echo \"${FAKE_UNAME_S:-Linux}\" ;; esac\n", 0o755)
	write(t, f.jit, secret+"\n", 0o600)
	name := "actions-runner-linux-x64-" + version + ".tar.gz"
	archive := filepath.Join(dir, "srv", "v"+version, name)
	writeTarGz(t, archive, map[string]string{"run.sh": runSh, "bin/Runner.Listener": "fake"})
	write(t, f.sums, sha256File(t, archive)+"  "+name+"\n", 0o644)
	f.env = append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOME="+dir,
		"OUT="+filepath.Join(dir, "out"),
		"RUNNER_VERSION="+version,
		"RUNNER_BASE_URL=file://"+filepath.Join(dir, "srv"),
		"RUNNER_CHECKSUMS_FILE="+f.sums,
		"RUNNER_CACHE_DIR="+f.cache,
		"JIT_CONFIG_FILE="+f.jit,
		"NOMAD_TASK_DIR="+f.task,
	)
	return f
}

func write(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func writeTarGz(t *testing.T, p string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "./" + name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	write(t, p, buf.String(), 0o644)
}

// with returns the fixture's environment with some variables replaced
// ("KEY=" alone removes KEY).
func (f *fixture) with(kv ...string) []string {
	env := append([]string(nil), f.env...)
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		out := env[:0]
		for _, e := range env {
			if !strings.HasPrefix(e, k+"=") {
				out = append(out, e)
			}
		}
		env = out
		if v != "" {
			env = append(env, s)
		}
	}
	return env
}

func (f *fixture) run(t *testing.T, env []string) (int, string, string) {
	t.Helper()
	cmd := exec.Command("sh", "unix/run-runner.sh")
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func (f *fixture) out(name string) string {
	b, _ := os.ReadFile(filepath.Join(f.dir, "out", name))
	return string(b)
}

// assertClean checks that the work dir is gone and the secret was printed
// nowhere.
func (f *fixture) assertClean(t *testing.T, stdout, stderr string) {
	t.Helper()
	left, err := os.ReadDir(f.task)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("work dir left behind: %v", left)
	}
	for what, s := range map[string]string{"stdout": stdout, "stderr": stderr, "runner args": f.out("args")} {
		if strings.Contains(s, secret) || strings.Contains(s, secret[:12]) {
			t.Errorf("JIT config in %s:\n%s", what, s)
		}
	}
}

func TestRunRunnerStartsRunnerWithJITConfig(t *testing.T) {
	f := newFixture(t, "9.9.9", fakeRunSh)
	code, stdout, stderr := f.run(t, f.env)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if got := f.out("args"); strings.TrimSpace(got) != "" {
		t.Errorf("run.sh args = %q, want none (other users' ps shows arguments)", got)
	}
	if env := f.out("env"); strings.Count(env, secret) != 1 || !strings.Contains(env, "ACTIONS_RUNNER_INPUT_JITCONFIG="+secret+"\n") {
		t.Errorf("run.sh environment does not hold the JIT config as ACTIONS_RUNNER_INPUT_JITCONFIG, once:\n%s", env)
	}
	if pwd := strings.TrimSpace(f.out("pwd")); !strings.HasPrefix(pwd, f.task+"/actions-runner.") {
		t.Errorf("runner ran in %q, want a fresh dir under NOMAD_TASK_DIR", pwd)
	}
	if !strings.Contains(stdout, "runner: listening for jobs") {
		t.Errorf("runner output not passed through: %q", stdout)
	}
	f.assertClean(t, stdout, stderr)
	if _, err := os.Stat(filepath.Join(f.cache, "actions-runner-linux-x64-9.9.9.tar.gz")); err != nil {
		t.Errorf("archive not cached: %v", err)
	}

	// Second run: from the cache, no download (the server is gone).
	if err := os.RemoveAll(filepath.Join(f.dir, "srv")); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = f.run(t, f.env)
	if code != 0 || strings.Contains(stderr, "downloading") {
		t.Fatalf("cached run: exit %d\n%s", code, stderr)
	}
	f.assertClean(t, stdout, stderr)
}

func TestRunRunnerRefuses(t *testing.T) {
	tests := []struct {
		name    string
		version string
		edit    func(t *testing.T, f *fixture) []string
		want    string
	}{
		{
			name: "checksum mismatch", version: "9.9.9",
			edit: func(t *testing.T, f *fixture) []string {
				write(t, f.sums, strings.Repeat("ab", 32)+"  actions-runner-linux-x64-9.9.9.tar.gz\n", 0o644)
				return f.env
			},
			want: "checksum mismatch for actions-runner-linux-x64-9.9.9.tar.gz; refusing",
		},
		{
			name: "version not pinned", version: "9.9.9",
			edit: func(t *testing.T, f *fixture) []string { return f.with("RUNNER_CHECKSUMS_FILE=") },
			want: "checksum not pinned for actions-runner-linux-x64-9.9.9.tar.gz",
		},
		{
			// The script's own table for the default version: a fake
			// archive does not match the real pin.
			name: "built-in pin rejects a fake archive", version: "2.329.0",
			edit: func(t *testing.T, f *fixture) []string { return f.with("RUNNER_CHECKSUMS_FILE=") },
			want: "checksum mismatch for actions-runner-linux-x64-2.329.0.tar.gz",
		},
		{
			name: "unpinned platform", version: "2.329.0",
			edit: func(t *testing.T, f *fixture) []string {
				return f.with("RUNNER_CHECKSUMS_FILE=", "FAKE_UNAME_S=Darwin", "FAKE_UNAME_M=arm64")
			},
			want: "checksum not pinned for actions-runner-osx-arm64-2.329.0.tar.gz",
		},
		{
			name: "freebsd", version: "9.9.9",
			edit: func(t *testing.T, f *fixture) []string { return f.with("FAKE_UNAME_S=FreeBSD", "FAKE_UNAME_M=amd64") },
			want: "no Actions runner for FreeBSD",
		},
		{
			name: "no jit config", version: "9.9.9",
			edit: func(t *testing.T, f *fixture) []string {
				return f.with("JIT_CONFIG_FILE=" + filepath.Join(f.dir, "missing"))
			},
			want: "no JIT config at",
		},
		{
			name: "empty jit config", version: "9.9.9",
			edit: func(t *testing.T, f *fixture) []string { write(t, f.jit, "", 0o600); return f.env },
			want: "no JIT config at",
		},
		{
			name: "checksum not hex", version: "9.9.9",
			edit: func(t *testing.T, f *fixture) []string {
				write(t, f.sums, "TODO  actions-runner-linux-x64-9.9.9.tar.gz\n", 0o644)
				return f.env
			},
			want: "checksum not pinned",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.version, fakeRunSh)
			env := tt.edit(t, f)
			code, stdout, stderr := f.run(t, env)
			if code == 0 || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want failure with %q", code, stderr, tt.want)
			}
			if f.out("pwd") != "" {
				t.Error("the runner was started")
			}
			f.assertClean(t, stdout, stderr)
			files, _ := os.ReadDir(f.cache)
			if len(files) != 0 {
				t.Errorf("cache holds %v after a refusal", files)
			}
		})
	}
}

func TestRunRunnerReplacesTamperedCache(t *testing.T) {
	f := newFixture(t, "9.9.9", fakeRunSh)
	if err := os.MkdirAll(f.cache, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(f.cache, "actions-runner-linux-x64-9.9.9.tar.gz"), "tampered", 0o644)
	code, stdout, stderr := f.run(t, f.env)
	if code != 0 || !strings.Contains(stderr, "downloading") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if f.out("pwd") == "" {
		t.Error("runner not started after re-download")
	}
	f.assertClean(t, stdout, stderr)
}

func TestRunRunnerPassesExitStatus(t *testing.T) {
	f := newFixture(t, "9.9.9", fakeRunSh+"exit 3\n")
	code, stdout, stderr := f.run(t, f.env)
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s", code, stderr)
	}
	f.assertClean(t, stdout, stderr)
}

func TestRunRunnerForwardsSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			f := newFixture(t, "9.9.9", `#!/bin/sh
trap 'echo TERM > "$OUT/signal"; exit 143' TERM
echo started > "$OUT/started"
while :; do sleep 0.05; done
`)
			cmd := exec.Command("sh", "unix/run-runner.sh")
			cmd.Env = f.env
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for f.out("started") == "" {
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
					t.Fatalf("runner never started\n%s", errb.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 143 {
					t.Errorf("exit %v, want 143 (the runner's status)", err)
				}
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("script did not stop after the signal")
			}
			if strings.TrimSpace(f.out("signal")) != "TERM" {
				t.Errorf("runner did not get SIGTERM\n%s", errb.String())
			}
			f.assertClean(t, out.String(), errb.String())
		})
	}
}

func TestImageEntrypoint(t *testing.T) {
	need(t, "sh", "a POSIX shell")
	dir := t.TempDir()
	home := filepath.Join(dir, "runner")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(home, "run.sh"), fakeRunSh, 0o755)
	jit := filepath.Join(dir, "jit")
	write(t, jit, secret, 0o600)
	if err := os.MkdirAll(filepath.Join(dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(jitFile string) (int, string) {
		cmd := exec.Command("sh", "linux/entrypoint.sh")
		cmd.Env = append(os.Environ(), "RUNNER_HOME="+home, "JIT_CONFIG_FILE="+jitFile, "OUT="+filepath.Join(dir, "out"))
		b, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(b)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(b)
	}
	code, out := run(jit)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "out", "args"))
	if string(args) != "--jitconfig\n"+secret+"\n" {
		t.Errorf("args = %q", args)
	}
	env, _ := os.ReadFile(filepath.Join(dir, "out", "env"))
	if strings.Contains(out, secret) || strings.Contains(string(env), secret) {
		t.Error("JIT config printed or in the environment")
	}
	if code, out := run(filepath.Join(dir, "missing")); code != 64 || !strings.Contains(out, "no JIT config") {
		t.Errorf("missing config: exit %d, %q", code, out)
	}
}
