package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/internal/ghsim"
)

// TestKillNineLosesNothingDispatchesOnce kills the manager with SIGKILL at
// points of a request — right after the delivery was acknowledged, while
// the dispatch is in flight, and right after it — restarts it on the same
// store, and
// checks that exactly one workflow run and one comment result.
func TestKillNineLosesNothingDispatchesOnce(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		name string
		// stall makes the manager hang at the step after the kill point.
		stall ghsim.Fault
		// reached reports that the kill point has passed.
		reached func(gh *ghsim.Server) bool
	}{
		{
			name:  "after receipt",
			stall: ghsim.Fault{Kind: ghsim.FaultLatency, Path: "/permission$", Latency: "30s"},
			reached: func(gh *ghsim.Server) bool {
				for _, d := range gh.Deliveries() {
					if d.Event == "pull_request" && d.Action == "labeled" && d.StatusCode == 202 {
						return true
					}
				}
				return false
			},
		},
		{
			// GitHub takes the dispatch but the manager dies before it
			// hears the answer: the restart must find the run, not
			// dispatch again.
			name:  "during the dispatch",
			stall: ghsim.Fault{Kind: ghsim.FaultSlowAnswer, Path: "/dispatches$", Method: "POST", Latency: "2s"},
			reached: func() func(gh *ghsim.Server) bool {
				// The dispatch follows the label removal at once and is
				// then held in ghsim for 2s: kill 300ms after the removal.
				var seen time.Time
				return func(gh *ghsim.Server) bool {
					if seen.IsZero() {
						for _, c := range gh.Calls() {
							if c.Method == "DELETE" && strings.Contains(c.Path, "/labels/") && c.Status == 200 {
								seen = time.Now()
							}
						}
						return false
					}
					return time.Since(seen) > 300*time.Millisecond
				}
			}(),
		},
		{
			name:  "after the dispatch",
			stall: ghsim.Fault{Kind: ghsim.FaultLatency, Path: "/comments$", Method: "POST", Latency: "2s"},
			reached: func(gh *ghsim.Server) bool {
				return count(gh, "POST", "/dispatches") == 1
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gh := ghsim.New(ghsim.Options{})
			if _, err := gh.Start("127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
			defer gh.Close()
			wf, _ := filepath.Abs("../../workflows")
			must(t, gh.CreateRepo(ghsim.RepoSpec{Owner: "python", Name: "cpython", Org: true, WorkflowsDir: wf}))
			must(t, gh.AddCollaborator("python/cpython", "triager", "triage"))
			pr, err := gh.OpenPR("python/cpython", ghsim.PRSpec{Author: "contributor", Fork: "contributor", HeadSHA: strings.Repeat("5a", 20)})
			must(t, err)

			dir := t.TempDir()
			addr := freeAddr(t)
			cfg := filepath.Join(dir, "c.yaml")
			must(t, os.WriteFile(cfg, []byte(`
listen: `+addr+`
store: {path: `+filepath.Join(dir, "bf.db")+`}
github: {api_url: "`+gh.URL()+`/", token: t, webhook_secret: crash-secret}
nomad: {address: "http://127.0.0.1:1"}
repositories: [{name: python/cpython, workflow: quick-demo.yml}]
pools:
  - {name: q, platform: linux-x86_64, tier: quick, labels: [self-hosted, buildfleet, linux, x86_64, quick, release], stable: true}
  - {name: r, platform: linux-x86_64, tier: refleak, labels: [self-hosted, buildfleet, linux, x86_64, refleak], stable: true}
`), 0o600))
			_, err = gh.AddHook("python/cpython", "http://"+addr+"/webhook", "crash-secret", []string{"pull_request"})
			must(t, err)

			start := func() *exec.Cmd {
				cmd := exec.Command(bin, "serve", "--config", cfg)
				cmd.Stderr = &prefixWriter{t: t}
				must(t, cmd.Start())
				waitHealthy(t, addr)
				return cmd
			}
			cmd := start()
			must(t, gh.AddFault(tc.stall))
			must(t, gh.LabelPR("python/cpython", pr, "🔨 test-with-buildbots", "triager"))
			waitFor(t, "the kill point", func() bool { return tc.reached(gh) })
			must(t, cmd.Process.Signal(syscall.SIGKILL))
			_ = cmd.Wait()
			gh.ClearFaults()

			cmd = start()
			defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
			// The manager waits out a grace period before it looks whether
			// an unanswered attempt took effect; then the request ends.
			waitFor(t, "the request to finish", func() bool { return requestState(addr) == "dispatched" })
			// Give a duplicate every chance to appear, and a held answer
			// time to be recorded.
			time.Sleep(2500 * time.Millisecond)
			if n := count(gh, "POST", "/dispatches"); n != 1 {
				t.Errorf("%d dispatches, want exactly 1", n)
			}
			if n := count(gh, "POST", "/comments"); n != 1 {
				t.Errorf("%d comments posted, want exactly 1", n)
			}
		})
	}
}

// requestState reads the newest request's state from the status API.
func requestState(addr string) string {
	resp, err := http.Get("http://" + addr + "/api/v1/requests")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var body struct {
		Requests []struct {
			State string `json:"state"`
		} `json:"requests"`
	}
	if json.NewDecoder(resp.Body).Decode(&body) != nil || len(body.Requests) == 0 {
		return ""
	}
	return body.Requests[0].State
}

func count(gh *ghsim.Server, method, suffix string) int {
	n := 0
	for _, c := range gh.Calls() {
		if c.Method == method && strings.HasSuffix(c.Path, suffix) && c.Status < 300 {
			n++
		}
	}
	return n
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().String()
}

func waitHealthy(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, "/healthz", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// prefixWriter forwards the manager's log to the test log.
type prefixWriter struct{ t *testing.T }

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.t.Logf("manager: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
