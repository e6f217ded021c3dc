package manager

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	runnerimages "github.com/buildfleet/buildfleet/runner-images"
)

// ghDownload is an entry of ghsim's runners/downloads.
type ghDownload struct {
	OS     string `json:"os"`
	Arch   string `json:"architecture"`
	URL    string `json:"download_url"`
	SHA256 string `json:"sha256_checksum"`
}

func (h *harness) downloads() []ghDownload {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.gh.URL()+"/repos/"+e2eRepo+"/actions/runners/downloads", nil)
	req.Header.Set("Authorization", "Bearer test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []ghDownload
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// waitRequestsDone waits until n requests exist and all are done.
func (h *harness) waitRequestsDone(n int, within time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		reqs, _ := h.m.store.ListRequests(context.Background(), 10)
		done := 0
		for _, r := range reqs {
			if r.State == "done" {
				done++
			}
		}
		if len(reqs) == n && done == n {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("requests %+v, want %d done", reqs, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bootstrapSetup runs the real bootstrap (runner-images/unix/run-runner.sh)
// as the runner command, with a host cache of the test's own: it
// downloads the archive the dispatch meta names, which starts ghsim's
// runner.
func bootstrapSetup(t *testing.T, pools []config.Pool) fleetSetup {
	dir := runnerDir(t, 0o755)
	cache := runnerDir(t, 0o1777)
	script := filepath.Join(dir, "run-runner.sh")
	if err := os.WriteFile(script, []byte(runnerimages.RunRunner), 0o644); err != nil {
		t.Fatal(err)
	}
	return fleetSetup{pools: pools, script: "export RUNNER_CACHE_DIR=" + cache + "\nexec /bin/sh " + script + "\n"}
}

// TestRunnerFromGitHubsDownloads: the runner is the archive GitHub's (here
// ghsim's) runners/downloads lists, handed to the runner in its dispatch
// meta with its SHA-256, fetched and verified by the bootstrap; a second
// build on the same host downloads nothing.
func TestRunnerFromGitHubsDownloads(t *testing.T) {
	pool := fleetPools()[0]
	h, ag := newFleetHarnessWith(t, bootstrapSetup(t, []config.Pool{pool, fleetPools()[3]}))
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.waitFinal(1, 90*time.Second)
	if s := h.finalStatuses()["buildfleet/"+pool.Name]; s.State != "success" {
		t.Fatalf("status %+v, want success; manager log:\n%s", s, h.logs.String())
	}
	if n := h.gh.RunnerPackageDownloads(); n != 1 {
		t.Errorf("%d archive downloads, want 1", n)
	}
	// The child carried the URL and checksum ghsim listed for this host.
	arch := map[string]string{"amd64": "x64", "arm64": "arm64"}[runtime.GOARCH]
	var want ghDownload
	for _, d := range h.downloads() {
		if d.OS == "linux" && d.Arch == arch {
			want = d
		}
	}
	rs := h.runnerRows()
	if len(rs) != 1 {
		t.Fatalf("runner rows %+v", rs)
	}
	child, _, err := ag.Client.Jobs().Info(rs[0].NomadJobID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if child.Meta["runner_url"] != want.URL || child.Meta["runner_sha256"] != want.SHA256 || want.URL == "" {
		t.Errorf("dispatch meta %v, want url %s sha256 %s", child.Meta, want.URL, want.SHA256)
	}

	// A second build on the same host: the archive comes from the cache.
	h.waitRequestsDone(1, 30*time.Second)
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.waitRequestsDone(2, 90*time.Second)
	if n := h.gh.RunnerPackageDownloads(); n != 1 {
		t.Errorf("%d archive downloads after a second build, want still 1", n)
	}
	if s := h.finalStatuses()["buildfleet/"+pool.Name]; s.State != "success" {
		t.Errorf("second build: %+v", s)
	}
}

// TestOutdatedRunnerIsTheFleetsError: a frozen fleet keeps a release that
// GitHub then deprecates. The runner is refused at session start, and the
// PR gets the fleet's error with GitHub's reason at once, not a job left
// queued or more attempts with the same runner.
func TestOutdatedRunnerIsTheFleetsError(t *testing.T) {
	pool := fleetPools()[0]
	s := bootstrapSetup(t, []config.Pool{pool, fleetPools()[3]})
	s.configure = func(c *config.Config) { c.Runner.Freeze = true }
	h, _ := newFleetHarnessWith(t, s)
	eventually(t, "the manager to know GitHub's release", func() bool { return h.m.pkgs.Status().InUse == "2.900.0" })
	h.gh.ReleaseRunner("2.901.0")
	h.gh.SetMinRunnerVersion("2.901.0") // GitHub deprecates the frozen release
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.waitFinal(1, 90*time.Second)
	st := h.finalStatuses()["buildfleet/"+pool.Name]
	if st.State != "error" || !strings.Contains(st.Description, "GitHub refused runner 2.900.0 as outdated") {
		t.Fatalf("status %+v, want the fleet's error naming the outdated runner", st)
	}
	rs := h.runnerRows()
	if len(rs) != 1 || rs[0].State != "gave_up" {
		t.Errorf("runner rows %+v, want one attempt given up", rs)
	}
	reqs, _ := h.m.store.ListRequests(context.Background(), 1)
	if j := h.jobsOf(reqs[0].ID); len(j) != 1 || j[0].RunnerName != "" {
		t.Errorf("jobs %+v, want the job never taken", j)
	}
	if s := h.m.pkgs.Status(); s.Mode != "frozen" || s.Latest != "2.901.0" {
		t.Errorf("runner status %+v", s)
	}
}

// TestOutdatedRunnerRetriesWithGitHubsNewRelease: following GitHub's
// latest release, a runner refused as outdated makes the manager ask GitHub
// at once, and the next attempt runs the new release.
func TestOutdatedRunnerRetriesWithGitHubsNewRelease(t *testing.T) {
	pool := fleetPools()[0]
	h, _ := newFleetHarnessWith(t, bootstrapSetup(t, []config.Pool{pool, fleetPools()[3]}))
	eventually(t, "the manager to know GitHub's release", func() bool { return h.m.pkgs.Status().InUse == "2.900.0" })
	h.gh.ReleaseRunner("2.901.0") // not asked about again before the next hourly refresh
	h.gh.SetMinRunnerVersion("2.901.0")
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.waitFinal(1, 90*time.Second)
	if st := h.finalStatuses()["buildfleet/"+pool.Name]; st.State != "success" {
		t.Fatalf("status %+v, want success on the second attempt", st)
	}
	rs := h.runnerRows()
	if len(rs) != 2 || rs[0].State != "replaced" || !strings.Contains(rs[0].NomadReason, "outdated") || rs[1].State != "completed" {
		t.Errorf("runner rows %+v, want a refused attempt replaced by a completed one", rs)
	}
	if s := h.m.pkgs.Status(); s.InUse != "2.901.0" {
		t.Errorf("runner status %+v, want the new release in use", s)
	}
}
