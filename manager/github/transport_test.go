package github

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	roleOK        = `{"permission":"write","role_name":"maintain","user":{"login":"octocat","id":1}}`
	secondaryBody = `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`
	primaryBody   = `{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit"}`
)

// answer is one scripted response of the fake GitHub.
type answer struct {
	code    int
	headers map[string]string
	body    string
}

func scripted(t *testing.T, answers []answer, clock **fakeClock) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		if n > len(answers) {
			t.Errorf("unexpected request %d: %s %s", n, r.Method, r.URL.Path)
			w.WriteHeader(http.StatusTeapot)
			return
		}
		a := answers[n-1]
		for k, v := range a.headers {
			if v == "RESET+120" { // a reset 120 s after the fake now
				v = strconv.FormatInt((*clock).Now().Add(120*time.Second).Unix(), 10)
			}
			w.Header().Set(k, v)
		}
		writeJSON(w, a.code, a.body)
	}
}

func TestRetryPolicy(t *testing.T) {
	created := answer{201, nil, `{"id":77,"body":"hi"}`}
	role := answer{200, map[string]string{"X-RateLimit-Remaining": "4999", "X-RateLimit-Resource": "core"}, roleOK}
	tests := []struct {
		name      string
		post      bool // Comment (POST) instead of Role (GET)
		retry     Retry
		answers   []answer
		wantCalls int
		wantSlept []time.Duration // nil: not checked (jitter)
		wantErr   error           // nil: success
		reason    string          // retry metric that must be 1+
	}{
		{"429 Retry-After waits and succeeds", false, Retry{},
			[]answer{{429, map[string]string{"Retry-After": "7"}, `{"message":"Too Many Requests"}`}, role},
			2, []time.Duration{7 * time.Second}, nil, reasonSecondary},
		{"429 on POST is retried too", true, Retry{},
			[]answer{{429, map[string]string{"Retry-After": "2"}, `{"message":"Too Many Requests"}`}, created},
			2, []time.Duration{2 * time.Second}, nil, reasonSecondary},
		{"secondary 403 with Retry-After", false, Retry{},
			[]answer{{403, map[string]string{"Retry-After": "30"}, secondaryBody}, role},
			2, []time.Duration{30 * time.Second}, nil, reasonSecondary},
		{"secondary 403 by message backs off from the base", true, Retry{},
			[]answer{{403, nil, secondaryBody}, {403, nil, secondaryBody}, created},
			3, []time.Duration{3 * time.Millisecond, 6 * time.Millisecond}, nil, reasonSecondary},
		{"primary 403 waits until the reset", false, Retry{},
			[]answer{{403, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "RESET+120"}, primaryBody}, role},
			2, []time.Duration{121 * time.Second}, nil, reasonPrimary},
		{"permission 403 is not a rate limit", false, Retry{},
			[]answer{{403, nil, `{"message":"Resource not accessible by integration"}`}},
			1, []time.Duration{}, nil, ""},
		{"5xx GET retried", false, Retry{},
			[]answer{{502, nil, ``}, {503, nil, `{"message":"unavailable"}`}, role},
			3, nil, nil, reasonServer},
		{"5xx POST not retried", true, Retry{},
			[]answer{{502, nil, `{"message":"Server Error"}`}},
			1, []time.Duration{}, nil, ""},
		{"5xx GET bounded by MaxAttempts", false, Retry{MaxAttempts: 3},
			[]answer{{500, nil, ``}, {500, nil, ``}, {500, nil, ``}},
			3, nil, nil, reasonServer},
		{"Retry-After beyond MaxWait is not waited", false, Retry{MaxWait: 10 * time.Minute},
			[]answer{{429, map[string]string{"Retry-After": "3600"}, `{"message":"Too Many Requests"}`}},
			1, []time.Duration{}, ErrRateLimited, ""},
		{"rate limit bounded by MaxAttempts", false, Retry{MaxAttempts: 2},
			[]answer{{429, map[string]string{"Retry-After": "1"}, `{}`}, {429, map[string]string{"Retry-After": "1"}, `{}`}},
			2, []time.Duration{time.Second}, ErrRateLimited, reasonSecondary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var clock *fakeClock
			e := newTestEnv(t, scripted(t, tt.answers, &clock), func(o *Options) {
				if tt.retry.MaxAttempts != 0 {
					o.Retry.MaxAttempts = tt.retry.MaxAttempts
				}
				if tt.retry.MaxWait != 0 {
					o.Retry.MaxWait = tt.retry.MaxWait
				}
			})
			clock = e.clock
			var err error
			if tt.post {
				var id int64
				id, err = e.c.Comment(context.Background(), "o", "r", 1, "hi")
				if err == nil && id != 77 {
					t.Errorf("comment id %d, want 77", id)
				}
			} else {
				var role string
				role, err = e.c.Role(context.Background(), "o", "r", "octocat")
				if err == nil && role != "maintain" {
					t.Errorf("role %q, want maintain", role)
				}
			}
			last := tt.answers[len(tt.answers)-1]
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			case tt.wantErr == nil && last.code >= 300 && err == nil:
				t.Errorf("no error, want the final %d", last.code)
			case tt.wantErr == nil && last.code < 300 && err != nil:
				t.Errorf("err = %v", err)
			}
			if err != nil && strings.Contains(err.Error(), testToken) {
				t.Errorf("error leaks the token: %v", err)
			}
			reqs := e.gh.Requests()
			if len(reqs) != tt.wantCalls {
				t.Errorf("%d calls, want %d", len(reqs), tt.wantCalls)
			}
			for i, r := range reqs {
				if r.Auth != "Bearer "+testToken {
					t.Errorf("call %d: Authorization %q: retries must carry the credentials", i+1, r.Auth)
				}
				if r.Body != reqs[0].Body {
					t.Errorf("call %d: body %q, want the first body %q", i+1, r.Body, reqs[0].Body)
				}
			}
			if tt.wantSlept != nil && !slices.Equal(e.clock.Slept(), tt.wantSlept) && !(len(tt.wantSlept) == 0 && len(e.clock.Slept()) == 0) {
				t.Errorf("slept %v, want %v", e.clock.Slept(), tt.wantSlept)
			}
			if tt.reason != "" {
				if got := e.metric(t, "buildfleet_github_retries_total", map[string]string{"reason": tt.reason}); got < 1 {
					t.Errorf("retries{reason=%s} = %v", tt.reason, got)
				}
			}
			if got := e.metric(t, "buildfleet_github_requests_total", nil); int(got) != tt.wantCalls {
				t.Errorf("requests_total = %v, want one per call (%d)", got, tt.wantCalls)
			}
		})
	}
}

func TestRetryMetrics(t *testing.T) {
	var clock *fakeClock
	e := newTestEnv(t, scripted(t, []answer{
		{429, map[string]string{"Retry-After": "7"}, `{}`},
		{200, map[string]string{"X-RateLimit-Remaining": "4321", "X-RateLimit-Resource": "core"}, roleOK},
	}, &clock))
	clock = e.clock
	if _, err := e.c.Role(context.Background(), "o", "r", "u"); err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"buildfleet_github_retries_total", map[string]string{"reason": reasonSecondary}, 1},
		{"buildfleet_github_rate_limit_wait_seconds_total", nil, 7},
		{"buildfleet_github_rate_limit_remaining", map[string]string{"resource": "core"}, 4321},
		{"buildfleet_github_requests_total", map[string]string{"endpoint": "GET /repos/{}/{}/collaborators/{}/permission", "code": "4xx"}, 1},
		{"buildfleet_github_requests_total", map[string]string{"endpoint": "GET /repos/{}/{}/collaborators/{}/permission", "code": "2xx"}, 1},
	} {
		if got := e.metric(t, m.name, m.labels); got != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
}

// An exhausted primary quota, even on a successful answer, holds back the
// next calls of that bucket until the reset instead of sending them; go-github
// must not refuse them on its own.
func TestPrimaryExhaustionPauses(t *testing.T) {
	var clock *fakeClock
	var sentAt []time.Time
	var reset time.Time
	e := newTestEnv(t, func(w http.ResponseWriter, r *http.Request, n int) {
		sentAt = append(sentAt, clock.Now())
		switch n {
		case 1:
			reset = clock.Now().Add(300 * time.Second)
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
			w.Header().Set("X-RateLimit-Resource", "core")
		default:
			w.Header().Set("X-RateLimit-Remaining", "4999")
		}
		if strings.Contains(r.URL.Path, "/search/") {
			writeJSON(w, 200, `{"total_count":0,"incomplete_results":false,"items":[]}`)
			return
		}
		writeJSON(w, 200, roleOK)
	})
	clock = e.clock
	ctx := context.Background()
	if _, err := e.c.Role(ctx, "o", "r", "u"); err != nil {
		t.Fatal(err)
	}
	// Another bucket is not held back.
	if _, err := e.c.LabeledOpenPRs(ctx, "o", "r", "x"); err != nil {
		t.Fatal(err)
	}
	if len(e.clock.Slept()) != 0 {
		t.Fatalf("search waited %v for the core bucket", e.clock.Slept())
	}
	// A call of any method waits for the reset, then goes out.
	if err := e.c.RemoveLabel(ctx, "o", "r", 1, "x"); err != nil {
		t.Fatal(err)
	}
	if len(sentAt) != 3 || sentAt[2].Before(reset) {
		t.Fatalf("sent at %v, want the third call after the reset %v", sentAt, reset)
	}
	if got := e.metric(t, "buildfleet_github_rate_limit_wait_seconds_total", nil); got < 300 {
		t.Errorf("rate_limit_wait_seconds_total = %v, want ≥ 300", got)
	}
}

func TestPauseBeyondBoundsIsNotWaited(t *testing.T) {
	var clock *fakeClock
	e := newTestEnv(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(clock.Now().Add(time.Hour).Unix(), 10))
		writeJSON(w, 200, roleOK)
	})
	clock = e.clock
	if _, err := e.c.Role(context.Background(), "o", "r", "u"); err != nil {
		t.Fatal(err)
	}
	_, err := e.c.Role(context.Background(), "o", "r", "u")
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("err = %v, want ErrRateLimited", err)
	}
	if n := len(e.gh.Requests()); n != 1 {
		t.Errorf("%d calls sent, want 1: the second must not leave", n)
	}
	// A deadline before the reset also fails at once.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, err = e.c.Role(ctx, "o", "r", "u")
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("with deadline: err = %v, want ErrRateLimited", err)
	}
}

func TestCancelDuringWait(t *testing.T) {
	entered := make(chan struct{})
	e := newTestEnv(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Retry-After", "60")
		writeJSON(w, 429, `{}`)
	}, func(o *Options) {
		o.Retry.Sleep = func(ctx context.Context, d time.Duration) error {
			close(entered)
			<-ctx.Done()
			return ctx.Err()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.c.Role(ctx, "o", "r", "u")
		done <- err
	}()
	<-entered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := len(e.gh.Requests()); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

// roundTripFunc is a base transport standing in for the network.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestConnectionErrors(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	tests := []struct {
		name      string
		post      bool
		fail      error
		wantCalls int
		wantOK    bool
	}{
		{"GET after a reset connection is retried", false, reset, 2, true},
		{"POST after a reset connection is not retried", true, reset, 1, false},
		{"POST that was never dialled is retried", true, dial, 2, true},
		{"GET after an unexpected EOF is retried", false, io.ErrUnexpectedEOF, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			var bodies []string
			e := newTestEnv(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if r.Method == "POST" {
					writeJSON(w, 201, `{"id":5}`)
					return
				}
				writeJSON(w, 200, roleOK)
			}, func(o *Options) {
				o.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
					calls++
					if r.Body != nil {
						b, _ := io.ReadAll(r.Body)
						bodies = append(bodies, string(b))
						r.Body = io.NopCloser(strings.NewReader(string(b)))
					}
					if calls == 1 {
						return nil, tt.fail
					}
					return http.DefaultTransport.RoundTrip(r)
				})
			})
			var err error
			if tt.post {
				_, err = e.c.Comment(context.Background(), "o", "r", 1, "body")
			} else {
				_, err = e.c.Role(context.Background(), "o", "r", "u")
			}
			if (err == nil) != tt.wantOK {
				t.Errorf("err = %v, want ok=%v", err, tt.wantOK)
			}
			if calls != tt.wantCalls {
				t.Errorf("%d attempts, want %d", calls, tt.wantCalls)
			}
			for _, b := range bodies {
				if b != bodies[0] {
					t.Errorf("replayed body %q, want %q", b, bodies[0])
				}
			}
			if tt.wantOK && tt.wantCalls > 1 {
				if got := e.metric(t, "buildfleet_github_retries_total", map[string]string{"reason": reasonConn}); got != 1 {
					t.Errorf("retries{connection_error} = %v", got)
				}
			}
		})
	}
}
