package ghsim

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// GitHub lists the runner's release archives at
// GET /repos/{owner}/{repo}/actions/runners/downloads. ghsim lists and
// serves packages of its own: each archive holds a run.sh (run.cmd on
// Windows) that starts ghsim's stand-in runner (Options.RunnerCommand) with
// the given JIT config, reporting the package's version when its session
// starts. A bootstrap that downloads, verifies and starts GitHub's runner
// starts this one the same way.

// runnerPlatforms are the os/architecture pairs GitHub's list carries.
var runnerPlatforms = []struct{ os, arch string }{
	{"linux", "x64"}, {"linux", "arm64"}, {"osx", "x64"}, {"osx", "arm64"}, {"win", "x64"}, {"win", "arm64"},
}

// defaultRunnerVersion is ghsim's own runner release until
// ReleaseRunner names another: a simulator's number, not GitHub's.
const defaultRunnerVersion = "2.900.0"

// packagesState is ghsim's side of the runner releases.
type packagesState struct {
	version    string // listed by runners/downloads
	minVersion string // older runners are refused at session start
	releases   map[string][]*runnerPackage
	files      map[string]*runnerPackage // by file name
	tamper     bool
	downloads  int
}

func newPackagesState() *packagesState {
	return &packagesState{version: defaultRunnerVersion, releases: map[string][]*runnerPackage{}, files: map[string]*runnerPackage{}}
}

type runnerPackage struct {
	OS, Arch, Filename, SHA256 string
	body                       []byte
}

// runnerRelease builds (once) the archives of a version. Callers hold s.mu.
func (s *Server) runnerRelease(version string) []*runnerPackage {
	if pk, ok := s.st.pkgs.releases[version]; ok {
		return pk
	}
	var out []*runnerPackage
	for _, p := range runnerPlatforms {
		name := fmt.Sprintf("actions-runner-%s-%s-%s", p.os, p.arch, version)
		var body []byte
		if p.os == "win" {
			name += ".zip"
			body = zipOf("run.cmd", runCmd(s.opts.RunnerCommand, version))
		} else {
			name += ".tar.gz"
			body = tarGzOf("run.sh", runSh(s.opts.RunnerCommand, version))
		}
		sum := sha256.Sum256(body)
		pk := &runnerPackage{OS: p.os, Arch: p.arch, Filename: name, SHA256: hex.EncodeToString(sum[:]), body: body}
		out = append(out, pk)
		s.st.pkgs.files[name] = pk
	}
	s.st.pkgs.releases[version] = out
	return out
}

func runSh(command, version string) string {
	if command == "" {
		return "#!/bin/sh\necho 'ghsim runner package: ghsim was started without a runner command' >&2\nexit 1\n"
	}
	// Like GitHub's run.sh: the JIT config comes as --jitconfig CONFIG or
	// in $ACTIONS_RUNNER_INPUT_JITCONFIG.
	return fmt.Sprintf(`#!/bin/sh
# ghsim's runner package %[2]s: starts ghsim's stand-in runner.
exec %[1]s runner --runner-version %[2]s "$@"
`, shQuote(command), version)
}

func runCmd(command, version string) string {
	return fmt.Sprintf("@echo off\r\n\"%s\" runner --runner-version %s %%*\r\n", command, version)
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// packageTime is every archive entry's time: the same version always
// builds the same bytes, so its checksum is stable.
var packageTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func tarGzOf(name, content string) []byte {
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	gz.ModTime = packageTime
	tw := tar.NewWriter(gz)
	_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(content)), ModTime: packageTime, Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte(content))
	_ = tw.Close()
	_ = gz.Close()
	return b.Bytes()
}

func zipOf(name, content string) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: packageTime})
	_, _ = w.Write([]byte(content))
	_ = zw.Close()
	return b.Bytes()
}

// handleRunnerDownloads is GET /repos/{owner}/{repo}/actions/runners/downloads.
func (s *Server) handleRunnerDownloads(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.lookupRepo(w, r); !ok {
		return
	}
	out := []any{}
	for _, p := range s.runnerRelease(s.st.pkgs.version) {
		out = append(out, obj{
			"os": p.OS, "architecture": p.Arch, "filename": p.Filename, "sha256_checksum": p.SHA256,
			"download_url": s.base + "/_ghsim/runner-packages/" + p.Filename,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleRunnerPackage serves an archive of any version ever listed (GitHub
// keeps old releases), or a tampered copy after TamperRunnerPackages.
func (s *Server) handleRunnerPackage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	pk := s.st.pkgs.files[r.PathValue("file")]
	tamper := s.st.pkgs.tamper
	if pk != nil {
		s.st.pkgs.downloads++
	}
	s.mu.Unlock()
	if pk == nil {
		notFound(w)
		return
	}
	body := pk.body
	if tamper {
		body = append(append([]byte(nil), body...), "tampered"...)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// ReleaseRunner makes version the runner release that runners/downloads
// lists, as a new GitHub release does.
func (s *Server) ReleaseRunner(version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.pkgs.version = version
}

// SetMinRunnerVersion makes ghsim refuse, at session start, runners older
// than version with GitHub's deprecation message ("" refuses none).
func (s *Server) SetMinRunnerVersion(version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.pkgs.minVersion = version
}

// TamperRunnerPackages makes the archive downloads differ from the
// checksums listed (a compromised mirror, a corrupted transfer).
func (s *Server) TamperRunnerPackages(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.pkgs.tamper = on
}

// RunnerPackageDownloads counts the archives served.
func (s *Server) RunnerPackageDownloads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.pkgs.downloads
}

// olderVersion tells whether runner version v is below min (dotted
// numbers; an unparsable v counts as older, a missing one is not checked).
func olderVersion(v, min string) bool {
	if min == "" || v == "" {
		return false
	}
	a, b := strings.Split(strings.TrimPrefix(v, "v"), "."), strings.Split(strings.TrimPrefix(min, "v"), ".")
	for i := 0; i < len(b); i++ {
		y, _ := strconv.Atoi(b[i])
		if i >= len(a) {
			return y > 0
		}
		x, err := strconv.Atoi(a[i])
		if err != nil {
			return true
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// deprecatedMessage is what GitHub answers an outdated runner (403), and
// what the runner prints before it exits.
func deprecatedMessage(version string) string {
	return "Runner version v" + strings.TrimPrefix(version, "v") + " is deprecated and cannot receive messages."
}
