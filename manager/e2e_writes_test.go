package manager

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/manager/github"
)

// writeKind names a content-creating GitHub call (the ones GitHub's
// secondary limit counts: 80 a minute, 500 an hour per credential) by what
// it does; "" for anything else.
func writeKind(method, path string) string {
	switch method {
	case "POST", "PATCH", "PUT", "DELETE":
	default:
		return ""
	}
	if !strings.HasPrefix(path, "/repos/") {
		return "" // the simulator's control API and the runner protocol
	}
	for _, k := range writeKinds {
		if k.re.MatchString(path) {
			return method + " " + k.name
		}
	}
	return method + " other"
}

var writeKinds = []struct {
	name string
	re   *regexp.Regexp
}{
	{"label", regexp.MustCompile(`/issues/\d+/labels`)},
	{"comment", regexp.MustCompile(`/issues/(\d+/)?comments`)},
	{"dispatch", regexp.MustCompile(`/dispatches$`)},
	{"jitconfig", regexp.MustCompile(`/generate-jitconfig$`)},
	{"runner", regexp.MustCompile(`/actions/runners/\d+$`)},
	{"status", regexp.MustCompile(`/statuses/`)},
	{"check run", regexp.MustCompile(`/check-runs`)},
	{"cancel", regexp.MustCompile(`/cancel$`)},
}

// writeTally counts the content-creating calls the harness's GitHub
// answered, prints them per kind, per request and per builder, and returns
// the total: GitHub's write budget, not the machine, bounds how fast a
// burst of requests drains, so writes per builder are the fleet's real
// throughput figure.
func writeTally(t *testing.T, h *harness, requests, builders int) int {
	t.Helper()
	byKind := map[string]int{}
	total := 0
	for _, c := range h.gh.Calls() {
		if k := writeKind(c.Method, c.Path); k != "" && c.Status < 400 {
			byKind[k]++
			total++
		}
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&b, "\n  %-16s %d", k, byKind[k])
	}
	t.Logf("GitHub writes: %d for %d request(s) × %d builder(s): %.1f per request, %.2f per builder%s",
		total, requests, builders, float64(total)/float64(requests), float64(total)/float64(requests*builders), b.String())
	return total
}

// writeBound is the least time GitHub's write budget lets writes
// content-creating calls take: the first N of each window go at once,
// every further N waits one more window. A burst cannot drain faster than
// its writes allow, so drain time is judged against this figure.
func writeBound(writes int, limits []github.Limit) time.Duration {
	return github.LeastTime(writes, limits)
}
