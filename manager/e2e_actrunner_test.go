package manager

import (
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/internal/testenv"
)

// actRunnerScript is the runner script body of the end-to-end tests that
// run github-act-runner, a runner nobody here wrote, instead of ghsim's
// stand-in: the archive `make runners` packs (the one hosts download) is
// unpacked where the runner's uid can read it, and its run.sh takes the
// JIT config from $JIT_CONFIG_FILE, as isolate.sh hands it over.
func actRunnerScript(t testing.TB) string {
	t.Helper()
	archive := testenv.ActRunnerArchive(t)
	dir := runnerDir(t, 0o755)
	if out, err := exec.Command("tar", "-xzf", archive, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("unpacking %s: %v: %s", archive, err, out)
	}
	return "exec " + filepath.Join(dir, "run.sh") + "\n"
}

// A builder whose step fails ends as a failure on the PR, with the real
// runner's log behind its Details link; the other builders succeed.
func TestActRunnerFailingStepFailsOnPR(t *testing.T) {
	pools := fleetPools()
	pools[1].Name = "linux-broken-quick"
	h, _ := newFleetHarnessWith(t, fleetSetup{script: actRunnerScript(t), pools: pools})
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.waitFinal(3, 2*time.Minute)
	want := map[string]string{"linux-quick": "success", "linux-broken-quick": "failure", "linux-asan-quick": "success"}
	for pool, state := range want {
		s, ok := h.finalStatuses()["buildfleet/"+pool]
		if !ok || s.State != state {
			t.Errorf("status of %s = %+v, want %s", pool, s, state)
			continue
		}
		page := h.page(s.TargetURL + "?raw=1")
		wantLine := "built and tested " + h.sha + " on " + pool
		if state == "failure" {
			wantLine = "the build on " + pool + " failed (on purpose)"
		}
		if !strings.Contains(page, "Runner OSDescription: github-act-runner") || !strings.Contains(page, wantLine) {
			t.Errorf("log page of %s lacks the real runner's lines (%q):\n%s", pool, wantLine, page)
		}
	}
}

// page fetches a page of ghsim's (a job's log) as text.
func (h *harness) page(url string) string {
	h.t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
