package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// retryTransport sends a request again when GitHub says "not now", within
// the bounds of Retry. The policy:
//
//   - Rate limits (429; 403 with remaining 0, Retry-After or the secondary
//     limit message): GitHub did not process the request, so every method is
//     retried, after Retry-After, else the quota reset, else an exponential
//     backoff from RateLimitBase. A secondary limit holds back every call of
//     this client until it passes; an exhausted primary quota (remaining 0,
//     also on a successful answer) holds back every call of that bucket until
//     its reset, instead of spending requests that GitHub would refuse.
//   - 500, 502, 503, 504 and connection errors: retried with exponential
//     backoff and jitter, only for methods whose repetition is harmless: GET,
//     HEAD, OPTIONS, PUT, DELETE and PATCH. PATCH counts as idempotent here
//     because GitHub's PATCH endpoints set fields to the given values (edit
//     a comment, update a check run); sending one twice ends in the same
//     state. A repeated DELETE may answer 404 when the first one took
//     effect, which callers read as "already gone". POST is never repeated
//     after a 5xx or a broken connection: it may have taken effect (a second
//     comment, a second workflow run). A POST whose connection could not even
//     be dialled never left, and is retried.
//   - A request with a body that cannot be replayed (no GetBody) is sent once.
//   - The context is honoured at every wait: a cancelled request returns the
//     context's error at once.
type retryTransport struct {
	next  http.RoundTripper
	cfg   Retry
	state rateState
	m     retryMetrics
	// budget, when set, paces every attempt of a content-creating call.
	budget *Budget
}

type retryMetrics struct {
	retries   *prometheus.CounterVec
	waited    prometheus.Counter
	remaining *prometheus.GaugeVec
}

func newRetryTransport(next http.RoundTripper, cfg Retry, reg prometheus.Registerer) *retryTransport {
	f := promauto.With(reg) // a nil registerer registers nothing
	return &retryTransport{
		next: next,
		cfg:  cfg.withDefaults(),
		m: retryMetrics{
			retries: f.NewCounterVec(prometheus.CounterOpts{
				Name: "buildfleet_github_retries_total",
				Help: "GitHub requests sent again, by reason (rate_limit_primary, rate_limit_secondary, server_error, connection_error).",
			}, []string{"reason"}),
			waited: f.NewCounter(prometheus.CounterOpts{
				Name: "buildfleet_github_rate_limit_wait_seconds_total",
				Help: "Time spent waiting for GitHub rate limits, before a retry or before sending.",
			}),
			remaining: f.NewGaugeVec(prometheus.GaugeOpts{
				Name: "buildfleet_github_rate_limit_remaining",
				Help: "Requests left in the current rate-limit window, by resource, from the last answer.",
			}, []string{"resource"}),
		},
	}
}

// ErrRateLimited is returned when GitHub's rate limit did not pass within
// the client's bounds; the call was not made or was refused, and may be
// made again later.
var ErrRateLimited = errors.New("github rate limit")

// pausedError says that a request was not sent because its bucket is
// exhausted for longer than the wait allowed.
type pausedError struct {
	resource string
	until    time.Time
}

func (e *pausedError) Error() string {
	return fmt.Sprintf("github %s rate limit holds until %s; request not sent", e.resource, e.until.UTC().Format(time.RFC3339))
}

func (e *pausedError) Unwrap() error { return ErrRateLimited }

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	resource := resourceOf(req.URL.Path)
	var waited time.Duration
	rlRetries, errRetries := 0, 0
	for attempt := 1; ; attempt++ {
		if err := t.holdBack(ctx, resource, &waited); err != nil {
			return nil, err
		}
		var spent time.Time
		if t.budget != nil && budgeted(req) {
			var err error
			if spent, err = t.budget.wait(ctx); err != nil {
				return nil, err
			}
		}
		r, err := t.request(req, attempt)
		if err != nil {
			return nil, err
		}
		resp, err := t.next.RoundTrip(r)
		if !spent.IsZero() {
			t.budget.answered(spent)
		}
		var wait time.Duration
		var reason string
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if !idempotent(req.Method) && !neverSent(err) {
				return nil, err
			}
			reason, wait = reasonConn, t.backoff(errRetries)
			errRetries++
			if attempt >= t.cfg.MaxAttempts || waited+wait > t.cfg.MaxWait || !replayable(req) {
				return nil, err
			}
		} else {
			now := t.cfg.Now()
			bucket := t.observe(resp, resource, now)
			if kind, ok := rateLimited(resp); ok {
				reason, wait = kind, t.rateLimitWait(resp, rlRetries, now)
				rlRetries++
				if kind == reasonPrimary {
					t.state.exhaust(bucket, now.Add(wait))
				} else {
					t.state.hold(now.Add(wait))
				}
			} else if retryableStatus(resp.StatusCode) && idempotent(req.Method) {
				reason, wait = reasonServer, t.backoff(errRetries)
				errRetries++
			} else {
				hideFromSDK(resp)
				return resp, nil
			}
			if attempt >= t.cfg.MaxAttempts || waited+wait > t.cfg.MaxWait || !replayable(req) {
				hideFromSDK(resp)
				return resp, nil
			}
			drain(resp)
		}
		t.m.retries.WithLabelValues(reason).Inc()
		if reason == reasonPrimary || reason == reasonSecondary {
			t.m.waited.Add(wait.Seconds())
		}
		if err := t.cfg.Sleep(ctx, wait); err != nil {
			return nil, err
		}
		waited += wait
	}
}

// holdBack waits while the request's bucket is exhausted or a secondary
// limit holds, within what is left of MaxWait.
func (t *retryTransport) holdBack(ctx context.Context, resource string, waited *time.Duration) error {
	for {
		until := t.state.pausedUntil(resource)
		d := until.Sub(t.cfg.Now())
		if d <= 0 {
			return nil
		}
		if *waited+d > t.cfg.MaxWait {
			return &pausedError{resource: resource, until: until}
		}
		if dl, ok := ctx.Deadline(); ok && dl.Before(until) {
			// Waiting would only end in the deadline; say why now.
			return &pausedError{resource: resource, until: until}
		}
		t.m.waited.Add(d.Seconds())
		if err := t.cfg.Sleep(ctx, d); err != nil {
			return err
		}
		*waited += d
	}
}

// request returns what to send for an attempt: the request itself the first
// time, a copy with a fresh body afterwards.
func (t *retryTransport) request(req *http.Request, attempt int) (*http.Request, error) {
	if attempt == 1 {
		return req, nil
	}
	r := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		b, err := req.GetBody()
		if err != nil {
			return nil, fmt.Errorf("replaying request body: %w", err)
		}
		r.Body = b
	}
	return r, nil
}

// observe records the quota an answer reports: the gauge, and an exhausted
// bucket until its reset. It returns the bucket the answer names.
func (t *retryTransport) observe(resp *http.Response, resource string, now time.Time) string {
	if res := resp.Header.Get(hdrResource); res != "" {
		resource = res
	}
	if v := resp.Header.Get(hdrRemaining); v != "" {
		var n float64
		if _, err := fmt.Sscan(v, &n); err == nil {
			t.m.remaining.WithLabelValues(resource).Set(n)
		}
	}
	if reset, ok := primaryReset(resp.Header); ok && reset.After(now) {
		t.state.exhaust(resource, reset.Add(time.Second)) // reset is whole seconds; clocks drift
	}
	return resource
}

// rateLimitWait is how long to wait after a rate-limit answer: Retry-After,
// else until the reset of an exhausted quota, else RateLimitBase doubled
// per earlier rate-limit retry of this request.
func (t *retryTransport) rateLimitWait(resp *http.Response, n int, now time.Time) time.Duration {
	if d, ok := retryAfter(resp.Header, now); ok {
		return d
	}
	if reset, ok := primaryReset(resp.Header); ok {
		d := reset.Sub(now) + time.Second
		if d < time.Second {
			d = time.Second
		}
		return d
	}
	return t.cfg.RateLimitBase << min(n, 10)
}

// backoff is ErrorBase doubled per earlier error retry, with jitter so that
// clients that failed together do not retry together.
func (t *retryTransport) backoff(n int) time.Duration {
	d := t.cfg.ErrorBase << min(n, 10)
	return d/2 + rand.N(d/2+1)
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodPatch:
		return true
	}
	return false
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// neverSent reports whether a transport error happened before the request
// left: the connection could not be dialled.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// drain reads a little of a discarded answer so its connection can be
// reused, and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}
