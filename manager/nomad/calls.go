package nomad

import (
	"crypto/tls"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// calls counts the client's Nomad calls by operation, and remembers when
// Nomad last answered: the manager's readiness reads it.
type calls struct {
	total  atomic.Pointer[prometheus.CounterVec]
	errors atomic.Pointer[prometheus.CounterVec]
	// lastOK is when Nomad last answered a call (unix nanoseconds).
	lastOK atomic.Int64
}

// RegisterMetrics counts this client's calls in reg from now on.
func (c *Client) RegisterMetrics(reg prometheus.Registerer) {
	f := promauto.With(reg)
	c.calls.total.Store(f.NewCounterVec(prometheus.CounterOpts{
		Name: "buildfleet_nomad_calls_total",
		Help: "Nomad API calls by operation (method and endpoint, IDs left out).",
	}, []string{"operation"}))
	c.calls.errors.Store(f.NewCounterVec(prometheus.CounterOpts{
		Name: "buildfleet_nomad_errors_total",
		Help: "Nomad API calls that failed, by operation and kind (network, 4xx, 5xx).",
	}, []string{"operation", "kind"}))
}

// LastAnswer is when Nomad last answered a call (zero: never).
func (c *Client) LastAnswer() time.Time {
	if n := c.calls.lastOK.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// countedHTTPClient is the api package's default HTTP client (TLS 1.2 at
// least, HTTP/1, the config's TLS files) with every call counted.
func countedHTTPClient(tc *api.TLSConfig, cs *calls) (*http.Client, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSHandshakeTimeout = 10 * time.Second
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	t.ForceAttemptHTTP2 = false
	hc := &http.Client{Transport: t}
	if err := api.ConfigureTLS(hc, tc); err != nil {
		return nil, err
	}
	hc.Transport = &countingTransport{next: hc.Transport, cs: cs}
	return hc, nil
}

type countingTransport struct {
	next http.RoundTripper
	cs   *calls
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	op := Operation(r.Method, r.URL.Path)
	if m := t.cs.total.Load(); m != nil {
		m.WithLabelValues(op).Inc()
	}
	kind := ""
	switch {
	case err != nil:
		kind = "network"
	case resp.StatusCode >= 500:
		kind = "5xx"
	case resp.StatusCode >= 400 && resp.StatusCode != http.StatusNotFound:
		kind = "4xx" // a 404 is an answer: the job or variable is gone
	}
	if err == nil && resp.StatusCode < 500 {
		t.cs.lastOK.Store(time.Now().UnixNano())
	}
	if kind != "" {
		if m := t.cs.errors.Load(); m != nil {
			m.WithLabelValues(op, kind).Inc()
		}
	}
	return resp, err
}

// resources are the first path segments of the Nomad API; anything else
// is "other", so that a path never adds a metric series.
var resources = map[string]bool{
	"job": true, "jobs": true, "node": true, "nodes": true, "allocation": true, "allocations": true,
	"evaluation": true, "evaluations": true, "event": true, "var": true, "vars": true, "status": true,
	"agent": true, "client": true, "namespace": true, "namespaces": true, "node_pool": true, "node_pools": true,
	"acl": true, "operator": true, "regions": true, "deployment": true, "deployments": true,
}

// verbs are the path words after an ID that name an action.
var verbs = map[string]bool{
	"dispatch": true, "allocations": true, "evaluations": true, "eligibility": true, "drain": true,
	"summary": true, "stream": true, "leader": true, "peers": true, "purge": true, "evaluate": true,
	"stop": true, "metadata": true, "self": true, "versions": true, "deployments": true, "plan": true,
}

// Operation names a Nomad API call for metrics, IDs left out: "POST
// job/dispatch", "GET nodes", "GET event/stream".
func Operation(method, path string) string {
	segs := strings.Split(strings.Trim(strings.TrimPrefix(path, "/v1"), "/"), "/")
	if len(segs) == 0 || !resources[segs[0]] {
		return method + " other"
	}
	op := segs[0]
	for _, s := range segs[1:] {
		if verbs[s] {
			op += "/" + s
		}
	}
	return method + " " + op
}
