package scaleset

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// newCalls is the counter of Actions service calls, by route and status
// class; nil without a registerer.
func newCalls(reg prometheus.Registerer) *prometheus.CounterVec {
	if reg == nil {
		return nil
	}
	return promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "buildfleet_scaleset_requests_total",
		Help: "Calls to the Actions service's scale-set API (and the registration that precedes them) by route and status code class.",
	}, []string{"route", "code"})
}

// countingTransport counts each call ARC's client makes (after its own
// retries: it sits above them).
type countingTransport struct {
	next  http.RoundTripper
	calls *prometheus.CounterVec
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	code := "error"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode/100) + "xx"
	}
	t.calls.WithLabelValues(route(r.Method, r.URL.Path), code).Inc()
	return resp, err
}

var idLike = regexp.MustCompile(`^([0-9]+|[0-9a-fA-F-]{32,36})$`)

// route is a call's path with ids, session ids and the service's own
// prefix taken out, e.g. "GET _apis/runtime/runnerscalesets/{}/acquirablejobs";
// the message queue (a URL of GitHub's choosing) is "… messages".
func route(method, path string) string {
	path = strings.TrimPrefix(path, "/api/v3") // GitHub Enterprise Server's API root
	if i := strings.Index(path, "_apis/"); i >= 0 {
		path = path[i:]
	} else if i := strings.Index(path, "/repos/"); i >= 0 {
		path = "repos/{}/{}/" + strings.Join(tail(strings.Split(path[i+len("/repos/"):], "/"), 2), "/")
	} else if i := strings.LastIndex(path, "/messages"); i >= 0 {
		path = path[i+1:] // "messages" or "messages/<id>"
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, s := range segs {
		if idLike.MatchString(s) {
			segs[i] = "{}"
		}
	}
	return method + " " + strings.Join(segs, "/")
}

func tail(ss []string, n int) []string {
	if len(ss) <= n {
		return nil
	}
	return ss[n:]
}
