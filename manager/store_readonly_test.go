package manager

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/manager/store"
)

// A store whose file was made read-only before a restart answers reads;
// /readyz is 503 naming the store, and once the file is writable again the
// manager is ready without a restart (SQLite's read-only connections are
// replaced, not kept).
func TestReadinessRecoversFromAReadOnlyStore(t *testing.T) {
	dir := t.TempDir()
	var ghCalls atomic.Int64
	gh := fakeGitHub(t, &ghCalls)
	nomadUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/status/leader" {
			// The leader is this server itself: no fixed address.
			io.WriteString(w, strconv.Quote(r.Host))
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(nomadUp.Close)
	cfg := testConfig(t, gh.URL, nomadUp.URL)
	cfg.Store.Path = filepath.Join(dir, "buildfleet.db")
	// The store existed before; the file system went read-only since.
	st, err := store.Open(context.Background(), cfg.Store.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	readOnly(t, cfg.Store.Path)

	m, err := New(Options{Config: cfg, RecoverEvery: -1, ReadyGrace: time.Second, ProbeEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("the manager must start on a read-only store to say so: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	base := "http://" + m.Addr().String()
	eventually := func(what string, cond func(code int, body string) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, body := get(t, base+"/readyz")
			if cond(code, body) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /readyz still %d %s", what, code, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	eventually("read-only store", func(code int, body string) bool {
		return code == http.StatusServiceUnavailable && strings.Contains(body, `"store":"cannot write"`) &&
			strings.Contains(body, `"nomad":"ok"`) && strings.Contains(body, `"github":"ok"`)
	})
	writable(t, cfg.Store.Path)
	eventually("writable again", func(code int, body string) bool { return code == 200 && strings.Contains(body, `"store":"ok"`) })
}

// readOnly makes the database file read-only even for root (immutable;
// chmod is enough for anyone else).
func readOnly(t *testing.T, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(path, 0o400); err != nil {
			t.Fatal(err)
		}
		return
	}
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Skipf("cannot make the store immutable: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", path).Run() })
}

func writable(t *testing.T, path string) {
	t.Helper()
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chattr", "-i", path).CombinedOutput(); err != nil {
			t.Fatalf("chattr -i: %v: %s", err, out)
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
}
