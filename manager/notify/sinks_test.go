package notify_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/buildfleet/buildfleet/manager/notify"
)

// hookSink is a JSON webhook receiver; fail answers 500 to that many
// first deliveries.
type hookSink struct {
	srv  *httptest.Server
	mu   sync.Mutex
	fail int
	got  []notify.WebhookPayload
	hits int
}

func newHookSink(t *testing.T, fail int) *hookSink {
	h := &hookSink{fail: fail}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.hits++
		if h.fail > 0 {
			h.fail--
			http.Error(w, "not now", http.StatusInternalServerError)
			return
		}
		var p notify.WebhookPayload
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&p) != nil {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		h.got = append(h.got, p)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookSink) Received() []notify.WebhookPayload {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]notify.WebhookPayload(nil), h.got...)
}
