package ghsim

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"
)

func download(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return b
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// TestRunnerDownloads: every platform GitHub ships is listed, each archive
// served matches its checksum and starts the stand-in runner; a new release
// changes the list, old archives stay served; tampering shows.
func TestRunnerDownloads(t *testing.T) {
	s, c := newTestServer(t, Options{RunnerCommand: "/opt/ghsim"})
	list, _, err := c.Actions.ListRunnerApplicationDownloads(ctx(t), "python", "cpython")
	must(t, err)
	got := map[string]*github.RunnerApplicationDownload{}
	for _, d := range list {
		got[d.GetOS()+"-"+d.GetArchitecture()] = d
	}
	for _, p := range []string{"linux-x64", "linux-arm64", "osx-x64", "osx-arm64", "win-x64", "win-arm64"} {
		d := got[p]
		if d == nil {
			t.Fatalf("no %s in %v", p, got)
		}
		body := download(t, d.GetDownloadURL())
		if sha(body) != d.GetSHA256Checksum() || !strings.Contains(d.GetFilename(), defaultRunnerVersion) {
			t.Errorf("%s: checksum %s, listed %s (%s)", p, sha(body), d.GetSHA256Checksum(), d.GetFilename())
		}
	}
	// The Linux archive holds an executable run.sh that starts the runner
	// with the JIT config and the package's version.
	gz, err := gzip.NewReader(bytes.NewReader(download(t, got["linux-x64"].GetDownloadURL())))
	must(t, err)
	tr := tar.NewReader(gz)
	h, err := tr.Next()
	must(t, err)
	script, _ := io.ReadAll(tr)
	if h.Name != "run.sh" || h.Mode&0o111 == 0 || !strings.Contains(string(script), `'/opt/ghsim' runner --runner-version `+defaultRunnerVersion+` "$@"`) {
		t.Errorf("%s (mode %o):\n%s", h.Name, h.Mode, script)
	}
	old := got["linux-x64"]
	s.ReleaseRunner("2.901.0")
	list, _, err = c.Actions.ListRunnerApplicationDownloads(ctx(t), "python", "cpython")
	must(t, err)
	if f := list[0].GetFilename(); !strings.Contains(f, "2.901.0") || list[0].GetSHA256Checksum() == old.GetSHA256Checksum() {
		t.Errorf("after a release: %s %s", f, list[0].GetSHA256Checksum())
	}
	if b := download(t, old.GetDownloadURL()); sha(b) != old.GetSHA256Checksum() {
		t.Error("the old release is no longer served as listed")
	}
	s.TamperRunnerPackages(true)
	if b := download(t, old.GetDownloadURL()); sha(b) == old.GetSHA256Checksum() {
		t.Error("a tampered archive still matches its checksum")
	}
	if n := s.RunnerPackageDownloads(); n != 9 {
		t.Errorf("%d downloads counted, want 9", n)
	}
}

// TestOutdatedRunnerRefused: below the minimum version, the session is
// refused with GitHub's message and the job stays queued.
func TestOutdatedRunnerRefused(t *testing.T) {
	_, c := newTestServer(t, Options{MinRunnerVersion: "2.901.0"})
	jit, _, err := c.Actions.GenerateRepoJITConfig(ctx(t), "python", "cpython", &github.GenerateJITConfigRequest{Name: "old", RunnerGroupID: 1, Labels: []string{"x"}})
	must(t, err)
	var out bytes.Buffer
	err = RunRunner(ctx(t), RunnerOptions{JITConfig: jit.GetEncodedJITConfig(), Out: &out, Version: "2.900.0"})
	if !errors.Is(err, ErrRunnerDeprecated) || !strings.Contains(out.String(), "Runner version v2.900.0 is deprecated and cannot receive messages.") {
		t.Errorf("err %v, output %q", err, out.String())
	}
	rn, _, err := c.Actions.GetRunner(ctx(t), "python", "cpython", jit.Runner.GetID())
	must(t, err)
	if rn.GetStatus() != "offline" {
		t.Errorf("refused runner is %s, want offline", rn.GetStatus())
	}
	for v, older := range map[string]bool{"2.900.0": true, "2.901.0": false, "2.901.1": false, "2.1000.0": false, "v2.90.9": true, "": false, "x": true} {
		if olderVersion(v, "2.901.0") != older {
			t.Errorf("olderVersion(%q) = %v", v, !older)
		}
	}
}
