package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/retry"
	"github.com/buildfleet/buildfleet/manager/store"
)

// Run writes the queue until ctx ends: at start (what a restart left), on
// Wake, and every Idle. It is the only writer of its credential, so a
// secondary-limit wait in the GitHub transport holds back this queue
// instead of piling up concurrent writers.
func (rp *Reporter) Run(ctx context.Context) {
	var backoff time.Duration
	idle := time.NewTicker(rp.o.Idle)
	defer idle.Stop()
	for ctx.Err() == nil {
		worked, err := rp.step(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			backoff = rp.backoff(backoff, err)
			rp.log.Warn("writing a result, will retry", "in", backoff, "err", err)
			_ = rp.o.Sleep(ctx, backoff)
			continue
		case worked:
			backoff = 0
			continue
		}
		select {
		case <-ctx.Done():
		case <-rp.wake:
		case <-idle.C:
		}
	}
}

// Drain writes until the queue is empty or a write fails; for tests and
// tools that want the queue flushed without Run.
func (rp *Reporter) Drain(ctx context.Context) error {
	for {
		worked, err := rp.step(ctx)
		if err != nil || !worked {
			return err
		}
	}
}

// backoff doubles the wait after a failed write; a rate-limit answer waits
// at least a minute, as GitHub asks (within BackoffMax).
func (rp *Reporter) backoff(prev time.Duration, err error) time.Duration {
	d := max(2*prev, rp.o.BackoffBase)
	if errors.Is(err, github.ErrRateLimited) {
		d = max(d, time.Minute)
	}
	return min(d, rp.o.BackoffMax)
}

// step writes the pending row that waited longest. It reports whether
// there was one; an error means it stays pending.
func (rp *Reporter) step(ctx context.Context) (bool, error) {
	if n, err := rp.st.PendingReports(ctx); err == nil {
		rp.m.depth.Set(float64(n))
	}
	row, err := rp.st.NextReport(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// The credential's write budget (the GitHub client's) paces the write;
	// results only report, so builds' writes go first when it is short.
	sent, err := rp.write(github.WithPriority(ctx, github.Reports), row)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return false, ctx.Err()
	case refused(err):
		rp.m.failed.WithLabelValues("dropped").Inc()
		rp.log.Error("GitHub refused a result; it is dropped", "request", row.RequestID, "context", row.Context, "err", err)
	default:
		rp.m.failed.WithLabelValues("retried").Inc()
		if sent > 0 {
			// The refused write still counts with GitHub.
			_ = rp.st.ReportWritten(ctx, row.RequestID, row.Context, 0, sent, "")
		}
		return true, err
	}
	errText := ""
	if err != nil {
		errText = err.Error()
	}
	if err := rp.st.ReportWritten(ctx, row.RequestID, row.Context, row.Seq, sent, errText); err != nil {
		return true, err
	}
	if row.Kind != "comment" && row.State != StatePending {
		rp.observeRequest(ctx, row.RequestID)
	}
	return true, nil
}

// refused tells GitHub's final no (the PR or repository is gone, the
// content is invalid, the credential may not write there) from a "not
// now", as the retry package classifies it for every loop. Such a write is
// dropped, logged, and not tried again.
func refused(err error) bool { return retry.Permanent(err) }

// observeRequest records the writes of a request once its last builder
// result is written.
func (rp *Reporter) observeRequest(ctx context.Context, id string) {
	rows, err := rp.st.ReportsOfRequest(ctx, id)
	if err != nil {
		return
	}
	writes := 0
	for _, r := range rows {
		if r.Kind == "comment" {
			continue
		}
		if r.Pending() || r.State == StatePending {
			return
		}
		writes += r.Writes
	}
	rp.m.perRequest.Observe(float64(writes))
}

// write sends one row; it returns how many content-creating requests it
// sent (0 or 1: lookups are reads).
func (rp *Reporter) write(ctx context.Context, row store.Report) (int, error) {
	var res Result
	if err := json.Unmarshal(row.Payload, &res); err != nil {
		return 0, fmt.Errorf("decoding queued result %s of %s: %w", row.Context, row.RequestID, err)
	}
	owner, name := splitRepo(row.Repo)
	switch row.Kind {
	case "status":
		state, desc := statusOf(res)
		if row.Tries > row.Writes {
			// A post tried before a restart, whose answer was never
			// recorded, may have taken effect: GitHub keeps every status
			// posted, so look before posting it twice.
			cur, err := rp.gh.LatestStatus(ctx, owner, name, row.SHA, row.Context)
			if err == nil && cur.State == state && cur.TargetURL == res.HTMLURL && (res.Final() || cur.Description == desc) {
				return 0, nil
			}
		}
		if err := rp.st.ReportTried(ctx, row.RequestID, row.Context); err != nil {
			return 0, err
		}
		rp.sent("status")
		return 1, rp.gh.CreateStatus(ctx, owner, name, row.SHA, state, res.HTMLURL, desc, row.Context)
	case "check":
		cr := checkRunOf(row, res, rp.o.Now())
		id, err := rp.findRemote(ctx, row, func() (int64, error) {
			return rp.gh.FindCheckRun(ctx, owner, name, row.SHA, cr.Name, cr.ExternalID)
		})
		if err != nil {
			return 0, err
		}
		if id != 0 {
			rp.sent("check_update")
			return 1, rp.gh.UpdateCheckRun(ctx, owner, name, id, cr)
		}
		return rp.create(ctx, row, "check_create", func() (int64, error) { return rp.gh.CreateCheckRun(ctx, owner, name, cr) })
	case "comment":
		rows, err := rp.st.ReportsOfRequest(ctx, row.RequestID)
		if err != nil {
			return 0, err
		}
		body, err := summaryComment(res.Request, rows)
		if err != nil {
			return 0, err
		}
		mark := summaryMarker(row.RequestID)
		id, err := rp.findRemote(ctx, row, func() (int64, error) {
			return rp.gh.FindComment(ctx, owner, name, res.Request.PR, mark)
		})
		if err != nil {
			return 0, err
		}
		if id != 0 {
			rp.sent("comment_edit")
			return 1, rp.gh.EditComment(ctx, owner, name, id, body)
		}
		return rp.create(ctx, row, "comment_create", func() (int64, error) {
			return rp.gh.Comment(ctx, owner, name, res.Request.PR, body)
		})
	}
	return 0, fmt.Errorf("queued result %s of %s: unknown kind %q", row.Context, row.RequestID, row.Kind)
}

// sent counts a write about to go out, by kind.
func (rp *Reporter) sent(kind string) {
	rp.m.writes.WithLabelValues(kind).Inc()
}

// findRemote returns the id of the row's check run or comment: recorded,
// or (after a creation was tried and its answer lost) found on GitHub.
// Zero means it does not exist yet.
func (rp *Reporter) findRemote(ctx context.Context, row store.Report, find func() (int64, error)) (int64, error) {
	if row.RemoteID != 0 || row.Tries == 0 {
		return row.RemoteID, nil
	}
	id, err := find()
	if errors.Is(err, github.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return id, rp.st.ReportRemote(ctx, row.RequestID, row.Context, id)
}

// create counts the attempt durably, then creates, then records the id:
// a crash in between is found by findRemote instead of duplicated.
func (rp *Reporter) create(ctx context.Context, row store.Report, kind string, do func() (int64, error)) (int, error) {
	if err := rp.st.ReportTried(ctx, row.RequestID, row.Context); err != nil {
		return 0, err
	}
	rp.sent(kind)
	id, err := do()
	if err != nil {
		return 1, err
	}
	return 1, rp.st.ReportRemote(ctx, row.RequestID, row.Context, id)
}
