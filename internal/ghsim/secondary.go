package ghsim

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// SecondaryLimit is one window of the secondary limit on content-creating
// requests: at most N in any span of Per.
type SecondaryLimit struct {
	N   int
	Per time.Duration
}

// contentCreating tells the requests GitHub counts against the limit.
func contentCreating(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// secondaryWait counts a content-creating request of the caller and
// returns how long it must wait if it is over a window (then it is not
// counted and must be refused).
func (s *Server) secondaryWait(r *http.Request) time.Duration {
	if len(s.opts.SecondaryLimits) == 0 || !contentCreating(r.Method) {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.writes == nil {
		s.st.writes = map[string][]time.Time{}
	}
	key := r.Header.Get("Authorization")
	now := s.opts.Now()
	log := s.st.writes[key]
	var wait time.Duration
	longest := time.Duration(0)
	for _, l := range s.opts.SecondaryLimits {
		longest = max(longest, l.Per)
		n := 0
		for i := len(log) - 1; i >= 0 && now.Sub(log[i]) < l.Per; i-- {
			n++
			if n == l.N {
				wait = max(wait, log[i].Add(l.Per).Sub(now))
			}
		}
	}
	if wait > 0 {
		return wait
	}
	for len(log) > 0 && now.Sub(log[0]) >= longest {
		log = log[1:]
	}
	s.st.writes[key] = append(log, now)
	return 0
}

// writeSecondary answers like GitHub over its secondary limit.
func writeSecondary(w http.ResponseWriter, rl rateState, wait time.Duration) {
	rl.setHeaders(w.Header())
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	writeJSON(w, http.StatusForbidden, obj{
		"message":           "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
		"documentation_url": secondaryDocs, "status": "403",
	})
}
