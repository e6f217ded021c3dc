package manager

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/testenv"
)

// actRunnerSetup makes pools run github-act-runner, a runner nobody here
// wrote, the way donors' hosts run it: the manager reads the SHA256SUMS
// `make runners` wrote and names each runner's archive and checksum in its
// dispatch meta; the job's bootstrap (isolate.sh, then run-runner.sh)
// downloads the archive from an HTTP server holding `make runners`' output,
// verifies it, and starts its run.sh with the JIT config. It returns the
// setup and a count of archive downloads.
func actRunnerSetup(t *testing.T, pools []config.Pool) (fleetSetup, *atomic.Int32) {
	t.Helper()
	dir := filepath.Dir(testenv.ActRunnerArchive(t))
	var downloads atomic.Int32
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".tar.gz") {
			downloads.Add(1)
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	for i := range pools {
		pools[i].Runner = config.RunnerActRunner
	}
	s := bootstrapSetup(t, pools)
	s.actRunner = config.ActRunner{URL: srv.URL + "/", Checksums: filepath.Join(dir, "SHA256SUMS")}
	return s, &downloads
}

// archiveSum is the SHA-256 SHA256SUMS lists for this host's archive.
func archiveSum(t *testing.T) (file, sum string) {
	t.Helper()
	archive := testenv.ActRunnerArchive(t)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(archive), "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if s, f, ok := strings.Cut(l, "  "); ok && f == filepath.Base(archive) {
			return f, s
		}
	}
	t.Fatalf("SHA256SUMS lists no %s", filepath.Base(archive))
	return "", ""
}

// A builder whose step fails ends as a failure on the PR, with the real
// runner's log behind its Details link; the other builders succeed.
func TestActRunnerFailingStepFailsOnPR(t *testing.T) {
	pools := fleetPools()
	pools[1].Name = "linux-broken-quick"
	setup, _ := actRunnerSetup(t, pools)
	h, _ := newFleetHarnessWith(t, setup)
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
