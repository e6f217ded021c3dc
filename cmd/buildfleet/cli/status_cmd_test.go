package cli

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/status"
	"github.com/buildfleet/buildfleet/manager/store"
)

func TestStatusCommand(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sha := strings.Repeat("c0", 20)
	if _, _, err := st.CreateRequest(ctx, store.Request{
		ID: "0123456789abcdef", DeliveryID: "d", Repo: "python/cpython", PR: 42, SHA: sha,
		Tier: "quick", Label: "🔨 test-with-buildbots", Actor: "triager", State: "dispatched",
		CreatedAt: time.Now().Add(-time.Minute),
	}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	srv := httptest.NewServer(status.New(status.Options{Store: st, Config: cfg}))
	defer srv.Close()

	code, out, errs := run(t, nil, "status", "--url", srv.URL)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errs)
	}
	for _, want := range []string{"REQUEST", "0123456789abcdef", "python/cpython", "#42", sha[:10], "triager", "dispatched"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	code, out, errs = run(t, nil, "status", "--url", srv.URL, "0123456789abcdef")
	if code != 0 || !strings.Contains(out, "PR #42 at "+sha) {
		t.Errorf("status ID: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := run(t, nil, "status", "--url", srv.URL, "ffffffffffffffff"); code != 1 || !strings.Contains(errs, "no such request") {
		t.Errorf("unknown request: exit %d, %s", code, errs)
	}
	if code, _, errs := run(t, nil, "status", "--url", srv.URL, "../../etc"); code != 2 || !strings.Contains(errs, "not a request id") {
		t.Errorf("malformed id: exit %d, %s", code, errs)
	}
	if code, _, _ := run(t, nil, "status", "--url", "ftp://x"); code != 2 {
		t.Errorf("bad url: exit %d, want 2", code)
	}
}
