package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "buildfleet.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestOpenMigratesAndSetsWAL(t *testing.T) {
	s, path := openTemp(t)
	var mode string
	if err := s.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
	var sync int
	if err := s.db.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if sync != 2 {
		t.Errorf("synchronous = %d, want 2 (FULL)", sync)
	}
	var v int
	if err := s.db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != SchemaVersion() {
		t.Errorf("user_version = %d, want %d", v, SchemaVersion())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("store file mode %v, want 0600 (it holds deliveries)", fi.Mode().Perm())
	}
	// Reopening an up-to-date store is a no-op.
	s.Close()
	s2, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	s2.Close()
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	s, path := openTemp(t)
	if _, err := s.db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, SchemaVersion()+1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(context.Background(), path); err == nil {
		t.Fatal("Open of a newer schema succeeded; want an error telling to upgrade")
	}
}

func TestDeliveryDedupe(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	d := Delivery{ID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", Event: "pull_request", ReceivedAt: time.Unix(1700000000, 5), Payload: []byte(`{"action":"labeled"}`)}
	ok, err := s.PutDelivery(ctx, d)
	if err != nil || !ok {
		t.Fatalf("first put = %v, %v; want true, nil", ok, err)
	}
	d2 := d
	d2.Payload = []byte(`{"action":"other"}`)
	ok, err = s.PutDelivery(ctx, d2)
	if err != nil || ok {
		t.Fatalf("second put = %v, %v; want false, nil", ok, err)
	}
	got, err := s.Delivery(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Payload) != string(d.Payload) || !got.ReceivedAt.Equal(d.ReceivedAt) {
		t.Errorf("stored %+v, want the first delivery %+v", got, d)
	}
	if _, err := s.Delivery(ctx, "missing"); err != ErrNotFound {
		t.Errorf("missing delivery: err = %v, want ErrNotFound", err)
	}
	un, err := s.Unprocessed(ctx, 10)
	if err != nil || len(un) != 1 {
		t.Fatalf("unprocessed = %d, %v; want 1", len(un), err)
	}
	if err := s.MarkProcessed(ctx, d.ID, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	un, _ = s.Unprocessed(ctx, 10)
	if len(un) != 0 {
		t.Errorf("after MarkProcessed, %d unprocessed; want 0", len(un))
	}
}

// TestCrashLosesNothingAcknowledged runs a child process that stores
// deliveries and prints each ID once PutDelivery returned, then kills it
// with SIGKILL mid-stream. Every ID the child acknowledged must be in the
// reopened store.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	if os.Getenv("BUILDFLEET_TEST_STORE_CHILD") != "" {
		crashChild()
		return
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashLosesNothingAcknowledged$")
	cmd.Env = append(os.Environ(), "BUILDFLEET_TEST_STORE_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if len(line) > 4 && line[:4] == "ack " {
			acked = append(acked, line[4:])
			if len(acked) == 200 {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
	}
	_ = cmd.Wait()
	if len(acked) < 200 {
		t.Fatalf("child acknowledged only %d deliveries before exiting", len(acked))
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("reopening after SIGKILL: %v", err)
	}
	defer s.Close()
	for _, id := range acked {
		if _, err := s.Delivery(context.Background(), id); err != nil {
			t.Fatalf("delivery %s acknowledged before the kill is missing: %v", id, err)
		}
	}
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM deliveries`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n < len(acked) {
		t.Errorf("%d rows after reopen, want at least %d", n, len(acked))
	}
	if err := s.db.QueryRow(`PRAGMA integrity_check`).Scan(new(string)); err != nil {
		t.Errorf("integrity_check: %v", err)
	}
}

func crashChild() {
	path := os.Getenv("BUILDFLEET_TEST_STORE_CHILD")
	s, err := Open(context.Background(), path)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		id := "d-" + strconv.Itoa(i)
		if _, err := s.PutDelivery(context.Background(), Delivery{ID: id, Event: "ping", ReceivedAt: time.Now(), Payload: []byte(`{}`)}); err != nil {
			fmt.Println("put:", err)
			os.Exit(1)
		}
		fmt.Println("ack " + id)
	}
}
