package runnerimages

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDeliveredScriptsAreTemplateSafe: the runner job delivers these files
// through Nomad templates, which would evaluate a "{{".
func TestDeliveredScriptsAreTemplateSafe(t *testing.T) {
	for name, s := range map[string]string{"isolate.sh": Isolate, "run-runner.sh": RunRunner, "run-runner.ps1": RunRunnerPS1} {
		if s == "" || strings.Contains(s, "{{") {
			t.Errorf("%s is empty or holds a template action", name)
		}
	}
}

// TestIsolateDropsRoot runs isolate.sh as root the way a runner task does
// (with the host's real uid locks, which every runner of this machine
// shares) and checks the runner's uid, groups, environment and work dir,
// and that the work dir is gone afterwards.
func TestIsolateDropsRoot(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("isolate.sh switches users only as root")
	}
	need(t, "setpriv", "apt-get install util-linux")
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	if err := os.Mkdir(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(secrets, "jit"), secret, 0o600)
	script := `echo "uid=$(id -u) groups=$(id -G)"; echo "pwd=$(pwd)"; env; ` +
		`if cat "` + secrets + `/jit" >/dev/null 2>&1; then echo SECRETS-READABLE; fi; ` +
		`test "$(cat "$JIT_CONFIG_FILE")" = "` + secret + `" && echo OWN-JIT-OK`
	cmd := exec.Command("sh", "unix/isolate.sh", "--", "/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), "NOMAD_SECRETS_DIR="+secrets, "NOMAD_ALLOC_ID=test-alloc",
		"NOMAD_META_runner_name=r1", "NOMAD_TOKEN=s3cret-token", "GITHUB_TOKEN=ghs_x")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("isolate.sh: %v\n%s", err, out)
	}
	s := string(out)
	var uid, work string
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(line, "uid="); ok {
			f := strings.Fields(v)
			uid = f[0]
			if strings.TrimPrefix(strings.Join(f[1:], " "), "groups=") != uid {
				t.Errorf("groups of the runner: %q, want only its own %s", line, uid)
			}
		}
		if v, ok := strings.CutPrefix(line, "pwd="); ok {
			work = v
		}
	}
	if uid == "" || uid == "0" {
		t.Errorf("runner uid %q, want a uid of its own\n%s", uid, s)
	}
	for _, bad := range []string{"s3cret-token", "ghs_x", "NOMAD_SECRETS_DIR", "SECRETS-READABLE"} {
		if strings.Contains(s, bad) {
			t.Errorf("the runner saw %q:\n%s", bad, s)
		}
	}
	for _, want := range []string{"NOMAD_META_runner_name=r1", "NOMAD_ALLOC_ID=test-alloc", "JIT_CONFIG_FILE=" + work + "/jit", "OWN-JIT-OK"} {
		if !strings.Contains(s, want) {
			t.Errorf("runner output lacks %q:\n%s", want, s)
		}
	}
	if _, err := os.Stat(work); work == "" || !os.IsNotExist(err) {
		t.Errorf("work dir %q left behind (%v)", work, err)
	}
}

func TestIsolateRefusesWithoutJITConfig(t *testing.T) {
	cmd := exec.Command("sh", "unix/isolate.sh", "--", "/bin/true")
	cmd.Env = append(os.Environ(), "NOMAD_SECRETS_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no JIT config") {
		t.Errorf("exit %v, output %q; want a refusal naming the missing JIT config", err, out)
	}
}

// TestIsolateUnprivilegedAgent runs isolate.sh as an unprivileged agent
// would (uid nobody, via setpriv): the runner keeps that uid, gets a fresh
// private work dir under the task dir, removed afterwards, and the clean
// environment; with group 0 among the agent's groups it refuses.
func TestIsolateUnprivilegedAgent(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to become another user")
	}
	need(t, "setpriv", "apt-get install util-linux")
	dir, err := os.MkdirTemp("", "isolate-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script, _ := filepath.Abs("unix/isolate.sh")
	task := filepath.Join(dir, "task")
	secrets := filepath.Join(dir, "secrets")
	for _, d := range []string{task, secrets} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(secrets, "jit"), secret, 0o600)
	if err := os.Chown(filepath.Join(secrets, "jit"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	run := func(groups string) (string, error) {
		cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--groups="+groups, "--",
			"sh", script, "--", "/bin/sh", "-c", `echo "uid=$(id -u) groups=$(id -G) pwd=$(pwd)"; env; test -r "$JIT_CONFIG_FILE" && echo OWN-JIT-OK`)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "NOMAD_SECRETS_DIR=" + secrets, "NOMAD_TASK_DIR=" + task, "NOMAD_TOKEN=s3cret-token"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("65534")
	if err != nil {
		t.Fatalf("isolate.sh as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(out, "uid=65534 groups=65534 pwd="+task+"/runner.") || !strings.Contains(out, "OWN-JIT-OK") ||
		strings.Contains(out, "s3cret-token") {
		t.Errorf("runner under an unprivileged agent:\n%s", out)
	}
	if left, _ := os.ReadDir(task); len(left) != 0 {
		t.Errorf("work dir left behind: %v", left)
	}
	if out, err := run("65534,0"); err == nil || !strings.Contains(out, "group 0") {
		t.Errorf("agent user with group 0: %v\n%s", err, out)
	}
}

// TestIsolateKillsLeftovers: a process the runner leaves behind (in a
// session of its own, out of reach of its process group) is killed when
// the runner ends, so that the uid is free for the next runner.
func TestIsolateKillsLeftovers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("isolate.sh switches users only as root")
	}
	need(t, "setpriv", "apt-get install util-linux")
	dir, err := os.MkdirTemp("", "isolate-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	write(t, filepath.Join(dir, "jit"), secret, 0o600)
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "unix/isolate.sh", "--", "/bin/sh", "-c", `setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > "`+out+`/pid"`)
	cmd.Env = append(os.Environ(), "NOMAD_SECRETS_DIR="+dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("isolate.sh: %v\n%s", err, b)
	}
	b, err := os.ReadFile(filepath.Join(out, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	// isolate.sh kills it before it exits; allow a moment for the kernel
	// to show it dead (another runner of this machine may later get the
	// same uid and would kill it too, so wait no longer).
	deadline := time.Now().Add(time.Second)
	for {
		st, err := os.ReadFile("/proc/" + pid + "/stat")
		// Gone, or a zombie waiting for init to reap it.
		if err != nil || strings.Contains(string(st), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runner's leftover process %s still runs", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
