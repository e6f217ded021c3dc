package manager

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
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
