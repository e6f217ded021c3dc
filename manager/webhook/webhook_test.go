package webhook

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/buildfleet/buildfleet/manager/store"
)

var secret = []byte("It's a Secret to Everybody")

func newHandler(t testing.TB) (*Handler, *store.Store, *atomic.Int64) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var notified atomic.Int64
	h, err := New(Options{Secret: secret, Sink: st, Events: []string{"pull_request", "workflow_job"}, Notify: func() { notified.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return h, st, &notified
}

func post(h http.Handler, event, id, sig string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(string(body)))
	if event != "" {
		r.Header.Set("X-GitHub-Event", event)
	}
	if id != "" {
		r.Header.Set("X-GitHub-Delivery", id)
	}
	if sig != "" {
		r.Header.Set("X-Hub-Signature-256", sig)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestSignMatchesGitHubExample(t *testing.T) {
	// GitHub's documented example: secret "It's a Secret to Everybody",
	// payload "Hello, World!".
	want := "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := Sign(secret, []byte("Hello, World!")); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestIntake(t *testing.T) {
	body := []byte(`{"action":"labeled","number":1}`)
	good := Sign(secret, body)
	sha1 := "sha1=" + strings.Repeat("0", 40)
	tests := []struct {
		name         string
		event, id    string
		sig          string
		body         []byte
		wantCode     int
		wantStored   bool
		wantNotified bool
	}{
		{"stored", "pull_request", "d-1", good, body, 202, true, true},
		{"unsigned", "pull_request", "d-2", "", body, 401, false, false},
		{"sha1 only", "pull_request", "d-3", sha1, body, 401, false, false},
		{"forged", "pull_request", "d-4", Sign([]byte("wrong"), body), body, 401, false, false},
		{"tampered body", "pull_request", "d-5", good, []byte(`{"action":"labeled","number":2}`), 401, false, false},
		{"bad hex", "pull_request", "d-6", "sha256=zz", body, 401, false, false},
		{"ping", "ping", "d-7", Sign(secret, []byte(`{"zen":"x"}`)), []byte(`{"zen":"x"}`), 200, false, false},
		{"unknown event ignored", "star", "d-8", good, body, 202, false, false},
		{"missing delivery id", "pull_request", "", good, body, 400, false, false},
		{"malformed delivery id", "pull_request", "d 9;drop", good, body, 400, false, false},
		{"not json", "pull_request", "d-10", Sign(secret, []byte("{nope")), []byte("{nope"), 400, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, st, notified := newHandler(t)
			w := post(h, tt.event, tt.id, tt.sig, tt.body)
			if w.Code != tt.wantCode {
				t.Errorf("code = %d (%s), want %d", w.Code, w.Body, tt.wantCode)
			}
			un, err := st.Unprocessed(context.Background(), 10)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(un) == 1; got != tt.wantStored || len(un) > 1 {
				t.Errorf("stored %d deliveries, want stored=%v", len(un), tt.wantStored)
			}
			if got := notified.Load() > 0; got != tt.wantNotified {
				t.Errorf("notified = %v, want %v", got, tt.wantNotified)
			}
		})
	}
}

func TestDuplicateDeliveryStoredOnce(t *testing.T) {
	h, st, notified := newHandler(t)
	body := []byte(`{"action":"labeled"}`)
	if w := post(h, "pull_request", "same-guid", Sign(secret, body), body); w.Code != 202 {
		t.Fatalf("first: %d", w.Code)
	}
	if w := post(h, "pull_request", "same-guid", Sign(secret, body), body); w.Code != 200 || !strings.Contains(w.Body.String(), "already") {
		t.Fatalf("duplicate: %d %s", w.Code, w.Body)
	}
	un, _ := st.Unprocessed(context.Background(), 10)
	if len(un) != 1 || notified.Load() != 1 {
		t.Errorf("%d stored, %d notifications; want 1 and 1", len(un), notified.Load())
	}
}

func TestBodyLimit(t *testing.T) {
	h, st, _ := newHandler(t)
	big := make([]byte, MaxBody+1)
	for i := range big {
		big[i] = ' '
	}
	w := post(h, "pull_request", "big", Sign(secret, big), big)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("code = %d, want 413", w.Code)
	}
	if un, _ := st.Unprocessed(context.Background(), 1); len(un) != 0 {
		t.Error("an oversized delivery was stored")
	}
}

func TestConcurrentDeliveriesAllStored(t *testing.T) {
	h, st, _ := newHandler(t)
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := []byte(fmt.Sprintf(`{"n":%d}`, i))
			if w := post(h, "workflow_job", fmt.Sprintf("c-%d", i), Sign(secret, body), body); w.Code != 202 {
				t.Errorf("delivery %d: %d", i, w.Code)
			}
		}(i)
	}
	wg.Wait()
	un, err := st.Unprocessed(context.Background(), 1000)
	if err != nil || len(un) != 200 {
		t.Errorf("stored %d (%v), want 200", len(un), err)
	}
}

func TestEmptySecretRefused(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New with an empty secret succeeded")
	}
}

// FuzzIntake feeds arbitrary headers and bodies, signed and not: the handler
// never panics, answers a known status and stores only signed JSON.
func FuzzIntake(f *testing.F) {
	f.Add("pull_request", "abc-1", []byte(`{"action":"labeled"}`), true)
	f.Add("ping", "x", []byte(`{}`), true)
	f.Add("", "", []byte{0xff, 0x00}, false)
	f.Add("workflow_job", "id", []byte(`[1,2`), true)
	h, st, _ := newHandler(f)
	f.Fuzz(func(t *testing.T, event, id string, body []byte, sign bool) {
		sig := ""
		if sign {
			sig = Sign(secret, body)
		}
		w := post(h, event, id, sig, body)
		switch w.Code {
		case 200, 202, 400, 401, 413:
		default:
			t.Fatalf("unexpected status %d", w.Code)
		}
		if w.Code == 202 && !sign {
			t.Fatal("unsigned delivery accepted")
		}
		if w.Code == 202 && (event == "pull_request" || event == "workflow_job") {
			if _, err := st.Delivery(context.Background(), id); err != nil {
				t.Fatalf("accepted delivery %q not stored: %v", id, err)
			}
		}
	})
}
