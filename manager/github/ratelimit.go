package github

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Retry bounds what the transport does when GitHub says "not now". Zero
// fields take the defaults; Now and Sleep are the time seam for tests.
type Retry struct {
	// MaxAttempts is the number of times one request is sent, first try
	// included (default 5).
	MaxAttempts int
	// MaxWait caps the total time one request spends waiting: backoffs,
	// Retry-After and rate-limit pauses (default 10m). A wait that would
	// pass it is not started: the caller gets GitHub's answer (or
	// ErrRateLimited) at once and can come back later from its own durable
	// state instead of holding a goroutine for up to an hour.
	MaxWait time.Duration
	// RateLimitBase is the first wait after a rate-limit answer that says
	// neither Retry-After nor a reset; it doubles per retry. GitHub asks for
	// at least one minute (default 60s).
	RateLimitBase time.Duration
	// ErrorBase is the first backoff after a 5xx or a connection error; it
	// doubles per retry, with jitter (default 1s).
	ErrorBase time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Sleep waits for d or until ctx is done, returning ctx's error then
	// (default: a timer).
	Sleep func(ctx context.Context, d time.Duration) error
}

func (r Retry) withDefaults() Retry {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 5
	}
	if r.MaxWait <= 0 {
		r.MaxWait = 10 * time.Minute
	}
	if r.RateLimitBase <= 0 {
		r.RateLimitBase = time.Minute
	}
	if r.ErrorBase <= 0 {
		r.ErrorBase = time.Second
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Sleep == nil {
		r.Sleep = sleep
	}
	return r
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Rate-limit response headers, as GitHub documents them.
const (
	hdrRemaining  = "X-RateLimit-Remaining"
	hdrReset      = "X-RateLimit-Reset"
	hdrResource   = "X-RateLimit-Resource"
	hdrRetryAfter = "Retry-After"
)

// resourceOf predicts the rate-limit bucket ("resource" in GitHub's terms)
// a request draws from, before any answer names it: search has its own
// small bucket (30/min), so an exhausted search quota must not stop the
// core calls of the trigger path, nor the other way round.
func resourceOf(path string) string {
	switch {
	case strings.Contains(path, "/search/code"):
		return "code_search"
	case strings.Contains(path, "/search/"):
		return "search"
	case strings.HasSuffix(path, "/graphql"):
		return "graphql"
	default:
		return "core"
	}
}

// rateState is what the transport learned from GitHub's headers and shares
// between concurrent requests: until when a bucket is exhausted (primary
// limit), and until when every call must hold back (secondary limit, which
// GitHub applies across endpoints and punishes further when ignored).
type rateState struct {
	mu        sync.Mutex
	exhausted map[string]time.Time // resource → reset
	holdAll   time.Time
}

// pausedUntil returns the moment before which a request of the resource
// must not be sent, or the zero time.
func (s *rateState) pausedUntil(resource string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	until := s.exhausted[resource]
	if s.holdAll.After(until) {
		until = s.holdAll
	}
	return until
}

func (s *rateState) exhaust(resource string, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exhausted == nil {
		s.exhausted = map[string]time.Time{}
	}
	if until.After(s.exhausted[resource]) {
		s.exhausted[resource] = until
	}
}

func (s *rateState) hold(until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if until.After(s.holdAll) {
		s.holdAll = until
	}
}

// primaryReset reads an exhausted primary quota: remaining 0 and the reset
// moment (epoch seconds). ok is false when the quota is not exhausted.
func primaryReset(h http.Header) (reset time.Time, ok bool) {
	if h.Get(hdrRemaining) != "0" {
		return time.Time{}, false
	}
	v, err := strconv.ParseInt(h.Get(hdrReset), 10, 64)
	if err != nil || v <= 0 {
		return time.Time{}, false
	}
	return time.Unix(v, 0), true
}

// retryAfter reads Retry-After, in seconds or as an HTTP date (RFC 9110
// allows both; GitHub sends seconds).
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get(hdrRetryAfter))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			n = 0
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// Kinds of rate-limit answers, also the "reason" label of the retry metric.
const (
	reasonPrimary   = "rate_limit_primary"
	reasonSecondary = "rate_limit_secondary"
	reasonServer    = "server_error"
	reasonConn      = "connection_error"
)

// rateLimited tells whether a 403 or 429 answer is a rate limit, and which
// kind. A 403 is also GitHub's answer to missing permissions, so it counts
// only with a rate-limit sign: remaining 0 (primary), or Retry-After or the
// documented secondary-limit message (secondary). Every 429 is a limit. The
// body of a 403/429 is read and put back so that go-github still sees it.
func rateLimited(resp *http.Response) (reason string, ok bool) {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return "", false
	}
	if resp.Header.Get(hdrRemaining) == "0" {
		return reasonPrimary, true
	}
	if resp.Header.Get(hdrRetryAfter) != "" {
		return reasonSecondary, true
	}
	body := peekBody(resp)
	lower := bytes.ToLower(body)
	if bytes.Contains(lower, []byte("secondary rate limit")) || bytes.Contains(lower, []byte("secondary-rate-limits")) ||
		bytes.Contains(lower, []byte("abuse detection")) || bytes.Contains(lower, []byte("abuse-rate-limits")) {
		return reasonSecondary, true
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return reasonSecondary, true
	}
	return "", false
}

// peekBody reads up to 64 KiB of the body and puts it back.
func peekBody(resp *http.Response) []byte {
	if resp.Body == nil {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
	return b
}

// hideFromSDK removes the headers from which go-github v60 would build its
// own client-side block (it refuses later calls locally with an error while
// it believes a limit holds). The transport has recorded the limit and
// waits for it instead, so go-github must not pre-empt it; the response
// still says remaining 0 and keeps its status, so go-github still reports
// the answer itself as a rate-limit error.
func hideFromSDK(resp *http.Response) {
	if resp.Header.Get(hdrRemaining) == "0" {
		resp.Header.Del(hdrReset)
	}
	if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests {
		resp.Header.Del(hdrRetryAfter)
		resp.Header.Del(hdrReset)
	}
}
