package github

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metricsTransport counts GitHub calls by endpoint and status class.
type metricsTransport struct {
	next  http.RoundTripper
	calls *prometheus.CounterVec
}

func newMetricsTransport(next http.RoundTripper, reg prometheus.Registerer) http.RoundTripper {
	if reg == nil {
		return next
	}
	return &metricsTransport{
		next: next,
		calls: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "buildfleet_github_requests_total",
			Help: "GitHub REST calls by endpoint (method and route) and status code class.",
		}, []string{"endpoint", "code"}),
	}
}

func (t *metricsTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	code := "error"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode/100) + "xx"
	}
	// The escaped path keeps a label such as "a/b" one segment ("a%2Fb"),
	// so it cannot add route segments or metric series.
	t.calls.WithLabelValues(Endpoint(r.Method, r.URL.EscapedPath()), code).Inc()
	return resp, err
}

var (
	numeric = regexp.MustCompile(`^[0-9]+$`)
	sha     = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// named lists the path segments whose next segment is a name chosen by
// users (owner, repo, label, user, workflow file, ref), never a route word.
var named = map[string]bool{
	"repos": true, "labels": true, "collaborators": true, "workflows": true,
	"commits": true, "statuses": true, "users": true, "orgs": true,
}

// Endpoint turns a request path into a low-cardinality route such as
// "DELETE /repos/{}/{}/issues/{}/labels/{}", for metrics and logs.
func Endpoint(method, path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	// Drop a GitHub Enterprise Server prefix.
	if len(segs) >= 2 && segs[0] == "api" && segs[1] == "v3" {
		segs = segs[2:]
	}
	out := make([]string, len(segs))
	for i, s := range segs {
		switch {
		case numeric.MatchString(s) || sha.MatchString(s):
			out[i] = "{}"
		case i > 0 && named[segs[i-1]]:
			out[i] = "{}"
		case i == 2 && segs[0] == "repos":
			out[i] = "{}"
		default:
			out[i] = s
		}
	}
	return method + " /" + strings.Join(out, "/")
}
