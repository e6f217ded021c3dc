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

// fixture is a fake runner archive served from a file:// URL and named,
// with its checksum, in the dispatch meta the manager sets.
type fixture struct {
	dir, task, cache, jit, archive, sum string
	env                                 []string
}

// fakeRunSh records its arguments and environment, prints something, and
// exits 0; tests replace it to fail or wait for a signal.
const fakeRunSh = `#!/bin/sh
printf '%s\n' "$@" > "$OUT/args"
env > "$OUT/env"
pwd > "$OUT/pwd"
echo "runner: listening for jobs"
`

func newFixture(t *testing.T, runSh string) *fixture {
	t.Helper()
	need(t, "sh", "a POSIX shell")
	need(t, "curl", "apt-get install curl")
	need(t, "tar", "apt-get install tar")
	dir := t.TempDir()
	f := &fixture{
		dir:     dir,
		task:    filepath.Join(dir, "task"),
		cache:   filepath.Join(dir, "cache"),
		jit:     filepath.Join(dir, "secrets", "jit"),
		archive: filepath.Join(dir, "srv", "actions-runner-linux-x64-9.9.9.tar.gz"),
	}
	for _, d := range []string{f.task, filepath.Dir(f.jit), filepath.Dir(f.archive), filepath.Join(dir, "out")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, f.jit, secret+"\n", 0o600)
	writeTarGz(t, f.archive, map[string]string{"run.sh": runSh, "bin/Runner.Listener": "fake"})
	f.sum = sha256File(t, f.archive)
	f.env = append(os.Environ(),
		"HOME="+dir,
		"OUT="+filepath.Join(dir, "out"),
		"NOMAD_META_runner_url=file://"+f.archive,
		"NOMAD_META_runner_sha256="+strings.ToUpper(f.sum), // case does not matter
		"NOMAD_META_runner_version=9.9.9",
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
	f := newFixture(t, fakeRunSh)
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
	if !strings.Contains(stdout, "runner: listening for jobs") || !strings.Contains(stderr, "downloading file://") {
		t.Errorf("runner output not passed through, or no download: %q\n%s", stdout, stderr)
	}
	f.assertClean(t, stdout, stderr)
	if got := sha256File(t, filepath.Join(f.cache, f.sum)); got != f.sum {
		t.Errorf("cache holds %s under %s", got, f.sum)
	}

	// Second run on the same host: from the cache, no download (the
	// server is gone).
	if err := os.RemoveAll(filepath.Dir(f.archive)); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = f.run(t, f.env)
	if code != 0 || strings.Contains(stderr, "downloading") || !strings.Contains(stderr, "from the host's cache") {
		t.Fatalf("cached run: exit %d\n%s", code, stderr)
	}
	f.assertClean(t, stdout, stderr)
}

func TestRunRunnerRefuses(t *testing.T) {
	tests := []struct {
		name string
		edit func(t *testing.T, f *fixture) []string
		want string
	}{
		{
			// A tampered archive (or a wrong checksum): refused before
			// anything is extracted or run.
			name: "tampered archive",
			edit: func(t *testing.T, f *fixture) []string {
				b, _ := os.ReadFile(f.archive)
				write(t, f.archive, string(b)+"tampered", 0o644)
				return f.env
			},
			want: "checksum mismatch for file://",
		},
		{
			name: "no archive named",
			edit: func(t *testing.T, f *fixture) []string { return f.with("NOMAD_META_runner_url=") },
			want: "no runner archive named",
		},
		{
			name: "no checksum",
			edit: func(t *testing.T, f *fixture) []string { return f.with("NOMAD_META_runner_sha256=") },
			want: "refusing to run an unverified runner",
		},
		{
			name: "checksum not hex",
			edit: func(t *testing.T, f *fixture) []string { return f.with("NOMAD_META_runner_sha256=TODO") },
			want: "refusing to run an unverified runner",
		},
		{
			name: "checksum too short",
			edit: func(t *testing.T, f *fixture) []string { return f.with("NOMAD_META_runner_sha256=abcd") },
			want: "is not a SHA-256",
		},
		{
			name: "no jit config",
			edit: func(t *testing.T, f *fixture) []string {
				return f.with("JIT_CONFIG_FILE=" + filepath.Join(f.dir, "missing"))
			},
			want: "no JIT config at",
		},
		{
			name: "empty jit config",
			edit: func(t *testing.T, f *fixture) []string { write(t, f.jit, "", 0o600); return f.env },
			want: "no JIT config at",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, fakeRunSh)
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
	f := newFixture(t, fakeRunSh)
	if err := os.MkdirAll(f.cache, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(f.cache, f.sum), "tampered", 0o644)
	code, stdout, stderr := f.run(t, f.env)
	if code != 0 || !strings.Contains(stderr, "downloading") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if f.out("pwd") == "" {
		t.Error("runner not started after re-download")
	}
	if got := sha256File(t, filepath.Join(f.cache, f.sum)); got != f.sum {
		t.Error("the tampered cache file was not replaced")
	}
	f.assertClean(t, stdout, stderr)
}

func TestRunRunnerPassesExitStatus(t *testing.T) {
	f := newFixture(t, fakeRunSh+"exit 3\n")
	code, stdout, stderr := f.run(t, f.env)
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s", code, stderr)
	}
	f.assertClean(t, stdout, stderr)
}

func TestRunRunnerForwardsSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			f := newFixture(t, `#!/bin/sh
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
