package manager

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	_ "modernc.org/sqlite"
)

// TestReadinessNamesAStoreThatCannotWrite: while another process holds the
// store's write lock, reads still answer but no delivery could be kept:
// /readyz says 503 and names the store; once the lock goes, the store is
// ok again without a restart.
func TestReadinessNamesAStoreThatCannotWrite(t *testing.T) {
	var ghCalls atomic.Int64
	gh := fakeGitHub(t, &ghCalls)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	cfg := testConfig(t, gh.URL, deadURL)
	m, err := New(Options{Config: cfg, RecoverEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	base := "http://" + m.Addr().String()
	storeCheck := func() (int, string) {
		code, body := get(t, base+"/readyz")
		var checks map[string]string
		if err := json.Unmarshal([]byte(body), &checks); err != nil {
			t.Fatalf("/readyz body %q: %v", body, err)
		}
		return code, checks["store"]
	}
	if _, s := storeCheck(); s != "ok" {
		t.Fatalf("store check before the lock: %q", s)
	}

	// Its own busy timeout: the manager may be writing at this moment
	// (a fleet or trigger tick), and BEGIN EXCLUSIVE must wait its turn,
	// not fail with SQLITE_BUSY.
	other, err := sql.Open("sqlite", cfg.Store.Path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `BEGIN EXCLUSIVE`); err != nil {
		t.Fatal(err)
	}
	if code, s := storeCheck(); code != http.StatusServiceUnavailable || s != "cannot write" {
		t.Errorf("/readyz while the store cannot write: %d, store %q", code, s)
	}
	if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if _, s := storeCheck(); s != "ok" {
		t.Errorf("store check after the lock went: %q", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
