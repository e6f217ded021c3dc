package ghsim

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// rateState is one token's budget in one resource, as of one request.
type rateState struct {
	Limit, Remaining, Used int
	Reset                  int64
	Resource               string
}

func (rl rateState) setHeaders(h http.Header) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(rl.Limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(rl.Remaining))
	h.Set("X-RateLimit-Used", strconv.Itoa(rl.Used))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(rl.Reset, 10))
	h.Set("X-RateLimit-Resource", rl.Resource)
}

type bucket struct {
	used  int
	reset time.Time
}

// limitFor returns the hourly limit of a resource: search allows 30 per
// minute on GitHub; ghsim keeps an hour window for both, scaled.
func (s *Server) limitFor(resource string) int {
	if resource == "search" {
		return 30
	}
	return s.opts.RateLimit
}

// spend counts one request against the caller's bucket (keyed by the
// Authorization header) and returns the state to report. GET /rate_limit is
// free, as on GitHub.
func (s *Server) spend(r *http.Request, resource string) rateState {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := r.Header.Get("Authorization") + "\x00" + resource
	if s.st.buckets == nil {
		s.st.buckets = map[string]*bucket{}
	}
	b := s.st.buckets[key]
	now := s.opts.Now()
	window := time.Hour
	if resource == "search" {
		window = time.Minute
	}
	if b == nil || now.After(b.reset) {
		b = &bucket{reset: now.Add(window).Truncate(time.Second)}
		s.st.buckets[key] = b
	}
	if r.URL.Path != "/rate_limit" {
		b.used++
	}
	lim := s.limitFor(resource)
	return rateState{Limit: lim, Used: b.used, Remaining: max(lim-b.used, 0), Reset: b.reset.Unix(), Resource: resource}
}

func (s *Server) handleRateLimit(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	auth := r.Header.Get("Authorization")
	res := obj{}
	for _, name := range []string{"core", "search", "graphql", "integration_manifest", "actions_runner_registration", "code_search"} {
		lim := s.limitFor(name)
		if name != "core" && name != "search" {
			lim = s.opts.RateLimit
		}
		used, reset := 0, s.opts.Now().Add(time.Hour).Unix()
		if b := s.st.buckets[auth+"\x00"+name]; b != nil {
			used, reset = b.used, b.reset.Unix()
		}
		res[name] = obj{"limit": lim, "used": used, "remaining": max(lim-used, 0), "reset": reset}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, obj{"resources": res, "rate": res["core"]})
}

type loginKey struct{}

func withLogin(ctx context.Context, login string) context.Context {
	return context.WithValue(ctx, loginKey{}, login)
}

// actor returns the user the request's token acts as.
func (s *Server) actor(r *http.Request) *user {
	login, _ := r.Context().Value(loginKey{}).(string)
	if login == "" {
		login = s.opts.DefaultLogin
	}
	return s.st.userFor(login, false)
}
