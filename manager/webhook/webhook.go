// Package webhook is the intake of GitHub's deliveries: it verifies the
// HMAC-SHA256 signature over the raw body, stores the delivery durably (in
// group-committed batches) and only then answers, so that nothing
// acknowledged is lost. Handling happens later, from the store.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/buildfleet/buildfleet/manager/store"
)

// MaxBody is the largest payload GitHub sends (25 MB); bigger bodies are
// answered 413.
const MaxBody = 25 << 20

// Sink stores deliveries in batches, reporting which were new.
type Sink interface {
	PutDeliveries(ctx context.Context, ds []store.Delivery) ([]bool, error)
}

// Options configure a Handler.
type Options struct {
	// Secret is the webhook secret; it must not be empty.
	Secret []byte
	// Sink stores deliveries.
	Sink Sink
	// Events lists the events worth storing; others are acknowledged and
	// dropped.
	Events []string
	// Notify is called (without blocking) after new deliveries are stored.
	Notify func()
	Logger *slog.Logger
	// Registerer receives the intake metrics; nil means none.
	Registerer prometheus.Registerer
	// Now is the clock that stamps a delivery's receipt (default
	// time.Now): the trigger compares those times with its own clock.
	Now func() time.Time
	// OnStore, when set, is told the outcome of each batch the store was
	// asked to keep: nil when it was kept, the store's error when the
	// deliveries were refused (503). The manager follows store outages
	// with it: GitHub does not redeliver what was refused.
	OnStore func(error)
}

// Handler serves POST /webhook.
type Handler struct {
	secret  []byte
	events  map[string]bool
	notify  func()
	now     func() time.Time
	log     *slog.Logger
	batcher *batcher
	answers *prometheus.CounterVec
}

// deliveryID accepts GitHub's GUIDs and nothing that could surprise a log
// reader or a query.
var deliveryID = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// New returns a handler; Run must be running for stores to complete.
func New(o Options) (*Handler, error) {
	if len(o.Secret) == 0 {
		return nil, errors.New("webhook: empty secret")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Notify == nil {
		o.Notify = func() {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Handler{
		secret:  o.Secret,
		events:  map[string]bool{},
		notify:  o.Notify,
		now:     o.Now,
		log:     o.Logger,
		batcher: newBatcher(o.Sink, o.OnStore),
	}
	for _, e := range o.Events {
		h.events[e] = true
	}
	reg := o.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	h.answers = promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "buildfleet_webhook_deliveries_total",
		Help: "Webhook deliveries by event and outcome (stored, duplicate, ignored, ping, unauthorized, invalid, too_large, error).",
	}, []string{"event", "outcome"})
	return h, nil
}

// Run commits batches of deliveries until ctx ends.
func (h *Handler) Run(ctx context.Context) { h.batcher.run(ctx) }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	event := r.Header.Get("X-GitHub-Event")
	metricEvent := event
	if !h.events[event] && event != "ping" {
		metricEvent = "other"
	}
	answer := func(code int, outcome, msg string) {
		h.answers.WithLabelValues(metricEvent, outcome).Inc()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		answer(http.StatusMethodNotAllowed, "invalid", "POST only")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			answer(http.StatusRequestEntityTooLarge, "too_large", "payload larger than 25 MB")
			return
		}
		answer(http.StatusBadRequest, "invalid", "could not read body")
		return
	}
	if !h.verify(r.Header.Get("X-Hub-Signature-256"), body) {
		// Unsigned, SHA-1-only or forged: refuse and keep nothing.
		h.log.Warn("webhook refused: bad or missing X-Hub-Signature-256", "event", safe(event), "remote", r.RemoteAddr)
		answer(http.StatusUnauthorized, "unauthorized", "signature does not match")
		return
	}
	id := r.Header.Get("X-GitHub-Delivery")
	if !deliveryID.MatchString(id) || event == "" {
		answer(http.StatusBadRequest, "invalid", "missing or malformed X-GitHub-Event or X-GitHub-Delivery")
		return
	}
	if event == "ping" {
		answer(http.StatusOK, "ping", "pong")
		return
	}
	if !h.events[event] {
		answer(http.StatusAccepted, "ignored", "event not used by buildfleet")
		return
	}
	body, err = payloadOf(r.Header.Get("Content-Type"), body)
	if err != nil {
		h.log.Warn("webhook refused: form body without a payload", "event", event, "delivery", id, "err", err)
		answer(http.StatusBadRequest, "invalid", "form body without a payload field")
		return
	}
	if !json.Valid(body) {
		h.log.Warn("webhook refused: body is not JSON", "event", event, "delivery", id)
		answer(http.StatusBadRequest, "invalid", "body is not JSON")
		return
	}
	fresh, err := h.batcher.put(r.Context(), store.Delivery{ID: id, Event: event, ReceivedAt: h.now(), Payload: body})
	if err != nil {
		h.log.Error("storing delivery failed", "event", event, "delivery", id, "err", err)
		answer(http.StatusServiceUnavailable, "error", "could not store the delivery; redeliver later")
		return
	}
	if !fresh {
		answer(http.StatusOK, "duplicate", "already received")
		return
	}
	h.notify()
	answer(http.StatusAccepted, "stored", "accepted")
}

// verify checks "sha256=<hex>" against HMAC-SHA256(secret, body) in
// constant time.
func (h *Handler) verify(header string, body []byte) bool {
	sig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, h.secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// Sign returns the X-Hub-Signature-256 value of a body, as GitHub computes
// it; tests and the simulator use it.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// safe shortens a header value for a log line.
func safe(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
