package status

import (
	"context"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/fleet"
	"github.com/buildfleet/buildfleet/manager/store"
)

// History is the part of the store the grid, the builder pages and the
// request timeline read. Each of its lists is paginated by creation time
// and served by an index, so the pages cost the same with 100 or 100,000
// requests in history.
type History interface {
	RequestsPage(ctx context.Context, before time.Time, limit int, tier string, dispatchedOnly bool) ([]store.Request, error)
	BuildsOfRequests(ctx context.Context, ids []string) ([]store.Build, error)
	BuildsOfRequest(ctx context.Context, requestID string) ([]store.Build, error)
	PoolBuilds(ctx context.Context, pool string, before time.Time, limit int) ([]store.Build, error)
}

var _ History = (*store.Store)(nil)

// Queue lists the builders waiting for a host (fleet.Fleet is one).
type Queue interface {
	Queue(ctx context.Context) ([]fleet.Waiting, error)
}

// Results a cell, a build or a summary shows: the colour of the grid.
const (
	resultSuccess   = "success"
	resultFailure   = "failure"
	resultError     = "error" // the fleet's, not the PR's
	resultCancelled = "cancelled"
	resultRunning   = "running"
	resultWaiting   = "waiting"
	resultNone      = "none"
)

// resultOf is one build's result as the pages colour it.
func resultOf(b store.Build) string {
	switch b.State {
	case fleet.StateCompleted:
		switch b.Conclusion {
		case "success", "neutral", "skipped":
			return resultSuccess
		case "failure", "timed_out":
			return resultFailure
		case "cancelled":
			return resultCancelled
		}
		return resultError
	case fleet.StateGaveUp, fleet.StateLost:
		return resultError
	case fleet.StateRunning:
		return resultRunning
	}
	return resultWaiting
}

func final(result string) bool {
	switch result {
	case resultSuccess, resultFailure, resultError, resultCancelled:
		return true
	}
	return false
}

// buildView is one build of a builder: a line of its history, a cell of
// the grid, a row of a request's timeline.
type buildView struct {
	RequestID  string `json:"request_id"`
	PR         int    `json:"pr"`
	PRURL      string `json:"pr_url,omitempty"`
	SHA        string `json:"sha"`
	ShortSHA   string `json:"-"`
	Tier       string `json:"tier"`
	Actor      string `json:"actor"`
	Pool       string `json:"pool"`
	JobID      int64  `json:"job_id"`
	Attempt    int    `json:"attempt"`
	RunnerName string `json:"runner_name"`
	Result     string `json:"result"`
	Conclusion string `json:"conclusion,omitempty"`
	Host       string `json:"host,omitempty"`
	JobURL     string `json:"job_url,omitempty"`
	// WaitReason is the last reason Nomad gave for not placing it.
	WaitReason string    `json:"wait_reason,omitempty"`
	Queued     time.Time `json:"queued_at,omitzero"`
	Dispatched time.Time `json:"dispatched_at,omitzero"`
	Placed     time.Time `json:"placed_at,omitzero"`
	Online     time.Time `json:"runner_started_at,omitzero"`
	Started    time.Time `json:"started_at,omitzero"`
	Finished   time.Time `json:"finished_at,omitzero"`
	// Waited is queued → placed; Duration is job started → finished.
	Waited   string    `json:"waited,omitempty"`
	Duration string    `json:"duration,omitempty"`
	Created  time.Time `json:"created_at"`
	Age      string    `json:"-"`
}

func (s *server) buildView(b store.Build) buildView {
	v := buildView{RequestID: b.RequestID, PR: b.PR, SHA: b.SHA, ShortSHA: short(b.SHA), Tier: b.Tier, Actor: b.Actor,
		Pool: b.Pool, JobID: b.GitHubJobID, Attempt: b.Attempt, RunnerName: b.RunnerName, Result: resultOf(b),
		Conclusion: b.Conclusion, Host: b.Times.NodeName, JobURL: b.HTMLURL, WaitReason: b.NomadReason,
		Queued: utc(b.ReceivedAt), Dispatched: utc(b.DispatchedAt), Placed: utc(b.Times.PlacedAt),
		Online: utc(b.Times.RunningAt), Started: utc(b.Times.StartedAt), Finished: utc(b.Times.FinishedAt),
		Created: b.CreatedAt.UTC(), Age: age(s.now().Sub(b.CreatedAt))}
	v.PRURL = s.prURL(b.Repo, b.PR)
	if !v.Queued.IsZero() && !v.Placed.IsZero() {
		v.Waited = span(v.Placed.Sub(v.Queued))
	}
	if d := duration(b); d > 0 {
		v.Duration = span(d)
	}
	return v
}

// duration is how long the job ran: started → finished.
func duration(b store.Build) time.Duration {
	if b.Times.StartedAt.IsZero() || b.Times.FinishedAt.Before(b.Times.StartedAt) {
		return 0
	}
	return b.Times.FinishedAt.Sub(b.Times.StartedAt)
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func short(sha string) string {
	if len(sha) > 10 {
		return sha[:10]
	}
	return sha
}

// span is a duration to the second, 1h2m3s.
func span(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Round(time.Second).String()
}

// pageSize bounds every list; pages link to the next with ?before=.
const pageSize = 50

// before reads the ?before= cursor (unix nanoseconds of the last item of
// the previous page); anything else is the first page.
func before(u *url.URL) time.Time {
	n, err := strconv.ParseInt(u.Query().Get("before"), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// olderLink is the URL of the page after one whose last item was created
// at last, keeping the other query parameters.
func olderLink(u *url.URL, last time.Time) string {
	q := u.Query()
	q.Set("before", strconv.FormatInt(last.UnixNano(), 10))
	return u.Path + "?" + q.Encode()
}

// builderStats sums up a builder's builds: pass rate over the verdicts
// (success or failure; the fleet's errors are not the builds'), and the
// median duration of the builds that ran to the end.
type builderStats struct {
	Passed   int    `json:"passed"`
	Failed   int    `json:"failed"`
	Errors   int    `json:"fleet_errors"`
	PassRate string `json:"pass_rate"`
	Median   string `json:"median_duration"`
}

func statsOf(bs []store.Build) builderStats {
	var st builderStats
	var ds []time.Duration
	for _, b := range bs {
		switch resultOf(b) {
		case resultSuccess:
			st.Passed++
		case resultFailure:
			st.Failed++
		case resultError:
			st.Errors++
		default:
			continue
		}
		if d := duration(b); d > 0 {
			ds = append(ds, d)
		}
	}
	if n := st.Passed + st.Failed; n > 0 {
		st.PassRate = strconv.Itoa(st.Passed*100/n) + " %"
	}
	if len(ds) > 0 {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		m := ds[len(ds)/2]
		if len(ds)%2 == 0 {
			m = (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
		}
		st.Median = span(m)
	}
	return st
}

func (s *server) pool(name string) (config.Pool, bool) {
	for _, p := range s.pools {
		if p.Name == name {
			return p, true
		}
	}
	return config.Pool{}, false
}
