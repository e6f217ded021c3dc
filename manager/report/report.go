// Package report puts each builder's result on the PR head commit: a check
// run when buildfleet authenticates as a GitHub App, a commit status with a
// token, and a summary comment when a request is finished.
//
// Report stores the result and returns; one goroutine (Run) writes to
// GitHub. There is one Reporter per GitHub client, that is per token or App
// installation, since GitHub's secondary limit (80 content-creating requests
// a minute, 500 an hour) is counted per credential:
//
//	Report(result) ──▶ reports row (request, context): payload = latest, seq++
//	                     (an unwritten older version is replaced: coalesced)
//	Run: next pending row, oldest first ──▶ the client's write budget
//	     (github.Budget, priority Reports) ──▶ one write ──┬─ ok ──▶ written_seq = seq
//	                              ├─ refused for good (403/404/422) ─▶ written, error kept
//	                              └─ rate limit, 5xx, network ──▶ back off, same row again
//
// A row is pending while seq > written_seq; a restart sends what is
// pending, so nothing enqueued is lost, and a job that went queued → in
// progress → completed while waiting is written once. Rows wait in the
// order they became pending, so the writes of one SHA keep their order.
//
// A fleet failure (state error: no host, runner lost, cancelled) never
// shows as the PR's failure: a status "error" with the reason, or a check
// run concluded "neutral" (grey, "not a verdict") with the reason in its
// output. "cancelled" is kept for jobs GitHub itself reports cancelled.
// Nothing is ever marked required.
package report

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/lifecycle"
	"github.com/buildfleet/buildfleet/manager/store"
)

// Result states: those of a commit status.
const (
	StatePending = "pending"
	StateSuccess = "success"
	StateFailure = "failure"
	// StateError is the fleet's failure, never the PR's.
	StateError = "error"
)

// Request is what a result says about its build request.
type Request struct {
	ID    string `json:"id"`
	Repo  string `json:"repo"`
	PR    int    `json:"pr"`
	SHA   string `json:"sha"` // the PR head at the label, never the run's head_sha
	Tier  string `json:"tier"`
	Actor string `json:"actor"`
	// Builders is how many builders the request has: the summary comment
	// waits for that many final results.
	Builders int `json:"builders"`
}

// RequestOf takes a stored request.
func RequestOf(r store.Request) Request {
	var bs []json.RawMessage
	_ = json.Unmarshal([]byte(r.Builders), &bs)
	return Request{ID: r.ID, Repo: r.Repo, PR: r.PR, SHA: r.SHA, Tier: r.Tier, Actor: r.Actor, Builders: len(bs)}
}

// Result is one builder's state as the fleet sees it.
type Result struct {
	Request Request `json:"request"`
	// Pool names the builder; the result is <context_prefix><Pool>.
	Pool  string `json:"pool"`
	JobID int64  `json:"job_id"`
	// HTMLURL is the job's log page: the Details link.
	HTMLURL string `json:"html_url"`
	Host    string `json:"host"`
	// State is pending, success, failure or error (the fleet's fault).
	State string `json:"state"`
	// Description says why, e.g. "runner lost: host went away".
	Description string `json:"description"`
	// Phase names a pending result's step on the way to a host (queued,
	// pool_full, no_host, placed, running). A pending result whose phase
	// is the one already stored is not written again: a waiting builder
	// costs one queued write however often its wait is looked at.
	Phase string `json:"phase,omitempty"`
	// Conclusion is the job's GitHub conclusion, if it completed.
	Conclusion  string    `json:"conclusion,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	CompletedAt time.Time `json:"completed_at"`
}

// Final reports whether the result is a verdict.
func (r Result) Final() bool { return r.State != StatePending }

// GitHub is what the reporter writes with.
type GitHub interface {
	CreateStatus(ctx context.Context, owner, repo, sha, state, targetURL, description, statusContext string) error
	LatestStatus(ctx context.Context, owner, repo, sha, statusContext string) (github.Status, error)
	CreateCheckRun(ctx context.Context, owner, repo string, cr github.CheckRun) (int64, error)
	UpdateCheckRun(ctx context.Context, owner, repo string, id int64, cr github.CheckRun) error
	FindCheckRun(ctx context.Context, owner, repo, sha, name, externalID string) (int64, error)
	Comment(ctx context.Context, owner, repo string, number int, body string) (int64, error)
	EditComment(ctx context.Context, owner, repo string, id int64, body string) error
	FindComment(ctx context.Context, owner, repo string, number int, marker string) (int64, error)
}

var _ GitHub = (*github.Client)(nil)

// Options configure a Reporter.
type Options struct {
	Config     config.Config
	Store      *store.Store
	GitHub     GitHub
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// BackoffBase and BackoffMax bound the wait after a failed write
	// (default 250ms doubling up to 5m: the queue is serial, so under a
	// storm of 5xx every failure delays every result behind it, and a
	// long first wait would make the storm, not GitHub's budget, set the
	// pace of a burst). A rate-limit answer waits at least a minute, as
	// GitHub asks, unless BackoffMax is lower.
	BackoffBase, BackoffMax time.Duration
	// Idle is how often the queue is looked at without a wake (default 1m).
	Idle time.Duration
	// OnFinished, when set, is told once every builder of a request has a
	// final result, with the request's outcome (see Outcome). It may be
	// told again when a result changes after that (a replayed event).
	OnFinished func(ctx context.Context, requestID string, outcome string)
	// Now and Sleep are the clock (default time.Now and a timer).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Reporter is the write queue of one GitHub credential.
type Reporter struct {
	cfg  config.Config
	st   *store.Store
	gh   GitHub
	log  *slog.Logger
	m    metrics
	o    Options
	wake chan struct{}
}

// New builds a Reporter; Run writes.
func New(o Options) *Reporter {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = 250 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 5 * time.Minute
	}
	if o.Idle <= 0 {
		o.Idle = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return &Reporter{cfg: o.Config, st: o.Store, gh: o.GitHub, log: o.Logger, m: newMetrics(o.Registerer, o.Config.Pools),
		o: o, wake: make(chan struct{}, 1)}
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

// summaryContext names the summary comment's row.
const summaryContext = "summary"

// Report stores a result for writing and returns; an error means it was
// not stored (the caller keeps its own state and reports again).
func (rp *Reporter) Report(ctx context.Context, res Result) error {
	repo := rp.repo(res.Request.Repo)
	kind := "status"
	if repo.Report == config.ReportChecks {
		kind = "check"
	}
	payload, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encoding result: %w", err)
	}
	row := store.Report{RequestID: res.Request.ID, Context: repo.ContextPrefix + res.Pool, Kind: kind,
		Repo: res.Request.Repo, SHA: res.Request.SHA, State: res.State, Payload: payload}
	coalesced, stored, err := rp.st.EnqueueReport(ctx, row, mergeResult)
	if err != nil {
		return err
	}
	if coalesced {
		rp.m.coalesced.Inc()
	}
	if stored && res.Final() {
		rp.m.results.WithLabelValues(res.Pool, resultConclusion(res)).Inc()
		if err := rp.finished(ctx, res.Request, repo); err != nil {
			return err
		}
	}
	rp.Wake()
	return nil
}

// mergeResult keeps a final result against a late pending one of the same
// request (out-of-order events), and carries started_at over.
func mergeResult(old *store.Report, r store.Report) (store.Report, bool) {
	if old == nil {
		return r, true
	}
	var prev, next Result
	if json.Unmarshal(old.Payload, &prev) != nil || json.Unmarshal(r.Payload, &next) != nil {
		return r, true
	}
	if prev.Final() && !next.Final() && prev.JobID == next.JobID {
		return r, false
	}
	if !prev.Final() && !next.Final() && next.Phase != "" && prev.Phase == next.Phase && prev.JobID == next.JobID {
		return r, false // the same step of the wait: nothing new to say
	}
	if prev.Final() && next.Final() && prev.JobID == next.JobID && prev.State == next.State &&
		prev.Description == next.Description && !old.Pending() {
		return r, false // a replay of what was written
	}
	if next.StartedAt.IsZero() && prev.JobID == next.JobID {
		next.StartedAt = prev.StartedAt
	}
	if next.Host == "" {
		next.Host = prev.Host
	}
	b, err := json.Marshal(next)
	if err != nil {
		return r, true
	}
	r.Payload = b
	return r, true
}

// finished ends a request once every builder has a final result: the
// summary comment is enqueued, if the repository wants one, and
// OnFinished is told the outcome.
func (rp *Reporter) finished(ctx context.Context, req Request, repo config.Repository) error {
	rows, err := rp.st.ReportsOfRequest(ctx, req.ID)
	if err != nil {
		return err
	}
	var results []Result
	for _, r := range rows {
		if r.Kind == "comment" {
			continue
		}
		if r.State == StatePending {
			return nil
		}
		var res Result
		if err := json.Unmarshal(r.Payload, &res); err != nil {
			return fmt.Errorf("decoding result %s of %s: %w", r.Context, r.RequestID, err)
		}
		results = append(results, res)
	}
	if len(results) < max(req.Builders, 1) {
		return nil
	}
	if repo.Comment == config.CommentOnFinish || repo.Comment == config.CommentBoth {
		if err := rp.summary(ctx, req); err != nil {
			return err
		}
	}
	outcome := Outcome(results)
	rp.m.outcomes.WithLabelValues(outcome).Inc()
	if rp.o.OnFinished != nil {
		rp.o.OnFinished(ctx, req.ID, outcome)
	}
	return nil
}

// Outcomes of a request whose builders all have a final result: the
// lifecycle's, written as a done request's reason.
const (
	OutcomeSucceeded  = lifecycle.OutcomeSucceeded
	OutcomeFailed     = lifecycle.OutcomeFailed
	OutcomeFleetError = lifecycle.OutcomeFleetError
	OutcomeCancelled  = lifecycle.OutcomeCancelled
)

// Outcome sums up a request's final results: a failure of the PR's build
// outweighs the fleet's errors, which outweigh cancellations; succeeded
// means every builder passed.
func Outcome(results []Result) string {
	out := OutcomeSucceeded
	rank := map[string]int{OutcomeSucceeded: 0, OutcomeCancelled: 1, OutcomeFleetError: 2, OutcomeFailed: 3}
	for _, r := range results {
		o := OutcomeSucceeded
		switch {
		case r.State == StateFailure:
			o = OutcomeFailed
		case r.State == StateError && r.Conclusion == "cancelled":
			o = OutcomeCancelled
		case r.State == StateError:
			o = OutcomeFleetError
		}
		if rank[o] > rank[out] {
			out = o
		}
	}
	return out
}

// resultConclusion names a final result for the metrics.
func resultConclusion(r Result) string {
	switch {
	case r.State == StateError && r.Conclusion == "cancelled":
		return OutcomeCancelled
	case r.State == StateError:
		return OutcomeFleetError
	}
	return r.State
}

// summary enqueues the summary comment of a finished request.
func (rp *Reporter) summary(ctx context.Context, req Request) error {
	payload, err := json.Marshal(Result{Request: req})
	if err != nil {
		return err
	}
	_, _, err = rp.st.EnqueueReport(ctx, store.Report{RequestID: req.ID, Context: summaryContext, Kind: "comment",
		Repo: req.Repo, SHA: req.SHA, Payload: payload}, func(old *store.Report, r store.Report) (store.Report, bool) {
		return r, true // a changed result after the summary edits it in place
	})
	return err
}

// Wake asks Run to look at the queue now.
func (rp *Reporter) Wake() {
	select {
	case rp.wake <- struct{}{}:
	default:
	}
}

// repo returns a repository's settings; an unknown one (removed from the
// config since) gets the defaults: statuses named buildfleet/<pool>.
func (rp *Reporter) repo(name string) config.Repository {
	for _, r := range rp.cfg.Repositories {
		if strings.EqualFold(r.Name, name) {
			if r.ContextPrefix == "" {
				r.ContextPrefix = config.DefaultContextPrefix
			}
			return r
		}
	}
	return config.Repository{Name: name, Report: config.ReportStatus, Comment: config.CommentOff,
		ContextPrefix: config.DefaultContextPrefix}
}

func splitRepo(name string) (string, string) {
	o, r, _ := strings.Cut(name, "/")
	return o, r
}
