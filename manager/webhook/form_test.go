package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestFormEncodedDelivery: a webhook configured with GitHub's
// application/x-www-form-urlencoded content type is signed over the raw
// form body; the stored payload is the JSON inside it. A signature over the
// JSON alone, or a form without a payload, is refused.
func TestFormEncodedDelivery(t *testing.T) {
	h, st, _ := newHandler(t)
	payload := `{"action":"labeled","label":{"name":"test: quick & more"}}`
	form := []byte(url.Values{"payload": {payload}}.Encode())
	send := func(id, sig string, body []byte) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("X-GitHub-Event", "pull_request")
		r.Header.Set("X-GitHub-Delivery", id)
		r.Header.Set("X-Hub-Signature-256", sig)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := send("form-1", Sign(secret, form), form); w.Code != http.StatusAccepted {
		t.Fatalf("form delivery: %d %s", w.Code, w.Body)
	}
	if w := send("form-2", Sign(secret, []byte(payload)), form); w.Code != http.StatusUnauthorized {
		t.Errorf("signature over the JSON instead of the body: %d, want 401", w.Code)
	}
	empty := []byte("other=1")
	if w := send("form-3", Sign(secret, empty), empty); w.Code != http.StatusBadRequest {
		t.Errorf("form without payload: %d, want 400", w.Code)
	}
	un, err := st.Unprocessed(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(un) != 1 || string(un[0].Payload) != payload {
		t.Fatalf("stored %d deliveries, want the one JSON payload: %+v", len(un), un)
	}
}
