package trigger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/lifecycle"
	"github.com/buildfleet/buildfleet/manager/retry"
	"github.com/buildfleet/buildfleet/manager/store"
)

// advance moves a request as far as it can go now. Each step records its
// outcome before the next starts.
func (t *Trigger) advance(ctx context.Context, r store.Request) error {
	repo := t.cfg.Repository(r.Repo)
	if repo == nil {
		return t.finish(ctx, &r, StateFailed, "repository no longer configured")
	}
	trig := repo.Trigger(r.Label)
	if trig == nil && !strings.HasPrefix(r.Actor, "operator:") {
		return t.finish(ctx, &r, StateFailed, "trigger label no longer configured")
	}
	owner, name := splitRepo(r.Repo)

	if r.State == StateChecking {
		role, err := t.role(ctx, owner, name, r.Actor)
		switch {
		case errors.Is(err, github.ErrNotFound):
			role = "none"
		case err != nil:
			return retry.Later(fmt.Errorf("looking up the role of %s: %w", r.Actor, err))
		}
		next, reason := StateAccepted, r.Reason
		if !config.RoleAtLeast(role, trig.MinRole) {
			next, reason = StateRefusing, fmt.Sprintf("role %s is below %s", role, trig.MinRole)
		}
		from := r.State
		if err := t.st.UpdateRequest(ctx, r.ID, store.RequestFields{From: &from, State: &next, Role: &role, Reason: &reason}); err != nil {
			return retry.Later(err)
		}
		r.State, r.Role, r.Reason = next, role, reason
	}

	// One label, one build: the label goes first, also when refusing.
	if !r.LabelRemoved && r.Label != "" {
		err := t.gh.RemoveLabel(ctx, owner, name, r.PR, r.Label)
		if err != nil && !errors.Is(err, github.ErrNotFound) {
			return retry.Later(fmt.Errorf("removing label: %w", err))
		}
		yes := true
		if err := t.st.UpdateRequest(ctx, r.ID, store.RequestFields{LabelRemoved: &yes}); err != nil {
			return retry.Later(err)
		}
		r.LabelRemoved = true
	}

	switch r.State {
	case StateRefusing:
		if err := t.comment(ctx, &r, repo, refusalComment(r, trig)); err != nil {
			return err
		}
		t.log.Info("build request refused", "request", r.ID, "actor", r.Actor, "role", r.Role)
		return t.finish(ctx, &r, StateRefused, r.Reason)
	case StateAccepted, StateLocating:
		if r.Reason == "closed" {
			return t.finish(ctx, &r, StateSkipped, "pull request is closed")
		}
		if strings.HasPrefix(r.Reason, reasonCommitUnknown) {
			if err := t.comment(ctx, &r, repo, commitUnknownComment(r)); err != nil {
				return err
			}
			return t.finish(ctx, &r, StateSkipped, r.Reason)
		}
		if same, err := t.coalesced(ctx, r); err != nil {
			return err
		} else if same != "" {
			t.log.Info("identical request in flight: not dispatched again", "request", r.ID, "same_as", same, "sha", r.SHA)
			return t.finish(ctx, &r, StateSkipped, "same commit and tier already being built by request "+same)
		}
		return t.schedule(ctx, &r, repo)
	}
	return nil
}

// schedule supersedes, dispatches and comments an accepted request.
func (t *Trigger) schedule(ctx context.Context, r *store.Request, repo *config.Repository) error {
	if r.Builders == "" || r.Builders == "[]" {
		b, err := buildersJSON(t.cfg.StablePools(r.Tier))
		if err != nil {
			return t.finish(ctx, r, StateFailed, err.Error())
		}
		if err := t.st.UpdateRequest(ctx, r.ID, store.RequestFields{Builders: &b}); err != nil {
			return retry.Later(err)
		}
		r.Builders = b
	}
	superseded, err := t.supersede(ctx, *r)
	if err != nil {
		return err
	}
	// The run goes first and the comment after it: every millisecond before
	// the dispatch delays the runners, and the comment then tells what
	// really happened. Both steps are recorded, so a restart between them
	// posts the comment without dispatching again.
	dispatchedBefore := r.RunID != 0
	if !dispatchedBefore {
		if err := t.dispatch(ctx, r, repo); err != nil || r.State == StateFailed {
			return err
		}
	}
	if repo.Comment == config.CommentOnSchedule || repo.Comment == config.CommentBoth {
		// The comment only tells people: it takes what GitHub's write
		// budget leaves after the builds (JIT configs, other requests'
		// dispatches), and it does not hold the trigger while the budget
		// has no room: the request waits here, its run going on, and the
		// comment goes on a later pass.
		cctx := github.WithoutWaiting(github.WithPriority(ctx, github.Reports))
		if err := t.comment(cctx, r, repo, scheduledComment(t.cfg, *r, superseded)); err != nil {
			return err
		}
	}
	st, from := StateDispatched, r.State
	if err := t.st.UpdateRequest(ctx, r.ID, store.RequestFields{From: &from, State: &st}); err != nil {
		return retry.Later(err)
	}
	r.State = st
	t.requests.WithLabelValues("dispatched").Inc()
	t.log.Info("workflow dispatched", "request", r.ID, "run", r.RunID, "sha", r.SHA, "tier", r.Tier)
	// Dispatched on an earlier pass (its comment waited for the write
	// budget), its builds may have ended meanwhile: Finish kept the
	// outcome in the reason (read again, it may have come after this pass
	// read the request). It ends now, not when reconciliation next looks
	// at the completed run. A run dispatched just now has no results yet.
	if !dispatchedBefore {
		return nil
	}
	if cur, err := t.st.Request(ctx, r.ID); err == nil && cur.State == StateDispatched && cur.Reason != "" {
		if _, err := Finish(ctx, t.st, r.ID, cur.Reason); err != nil {
			t.log.Warn("ending a request whose builds ended before its comment", "request", r.ID, "err", err)
		}
	}
	return nil
}

// dispatch starts the workflow run of a request and records its id. On
// GitHub Enterprise Server without return_run_details the run is found by
// the request id in its run-name, now or on a later pass (state locating).
func (t *Trigger) dispatch(ctx context.Context, r *store.Request, repo *config.Repository) error {
	owner, name := splitRepo(r.Repo)
	if r.DispatchTries > 0 {
		// A crash may have come between GitHub's answer and our record, or
		// GitHub answered without the run's id.
		if r.State != StateLocating {
			if err := t.settling(r); err != nil {
				return err
			}
		}
		run, err := t.gh.FindRun(ctx, owner, name, repo.Workflow, r.ID, r.CreatedAt.Add(-time.Minute))
		if err == nil {
			return t.recordRun(ctx, r, run.ID, run.HTMLURL)
		}
		if !errors.Is(err, github.ErrNotFound) {
			return retry.Later(fmt.Errorf("looking for the run of request %s: %w", r.ID, err))
		}
		if r.State == StateLocating {
			if t.now().Sub(r.UpdatedAt) > 10*time.Minute {
				return t.finish(ctx, r, StateFailed, "the dispatched run never appeared")
			}
			return retry.Later(fmt.Errorf("run of request %s not listed yet", r.ID))
		}
	}
	ref, err := t.ref(ctx, repo)
	if err != nil {
		return err
	}
	tries := r.DispatchTries + 1
	if err := t.st.UpdateRequest(ctx, r.ID, store.RequestFields{DispatchTries: &tries}); err != nil {
		return retry.Later(err)
	}
	r.DispatchTries = tries
	d, err := t.gh.DispatchWorkflow(ctx, owner, name, repo.Workflow, ref, map[string]string{
		"pr":         strconv.Itoa(r.PR),
		"sha":        r.SHA,
		"tier":       r.Tier,
		"request_id": r.ID,
		"builders":   r.Builders,
	})
	if retry.Permanent(err) {
		_ = t.comment(ctx, r, repo, failedComment(*r, err))
		return t.finish(ctx, r, StateFailed, "dispatch refused by GitHub: "+err.Error())
	}
	if err != nil {
		return retry.Later(fmt.Errorf("dispatching %s: %w", repo.Workflow, err))
	}
	if d.RunID != 0 {
		return t.recordRun(ctx, r, d.RunID, d.HTMLURL)
	}
	st, from := StateLocating, r.State
	if err := t.st.UpdateRequest(ctx, r.ID, store.RequestFields{From: &from, State: &st}); err != nil {
		return retry.Later(err)
	}
	r.State = st
	return t.dispatch(ctx, r, repo)
}

// recordRun stores the run's id: from then on the fleet serves its jobs.
func (t *Trigger) recordRun(ctx context.Context, r *store.Request, runID int64, url string) error {
	if err := t.st.UpdateRequest(ctx, r.ID, store.RequestFields{RunID: &runID, RunURL: &url}); err != nil {
		return retry.Later(err)
	}
	r.RunID, r.RunURL = runID, url
	if t.onDisp != nil {
		t.onDisp()
	}
	return nil
}

// supersede cancels the still-queued run of an earlier request of the same
// PR and tier. Running builds are left alone.
func (t *Trigger) supersede(ctx context.Context, r store.Request) ([]store.Request, error) {
	prev, err := t.st.PreviousRequests(ctx, r)
	if err != nil {
		return nil, retry.Later(err)
	}
	owner, name := splitRepo(r.Repo)
	var out []store.Request
	for _, p := range prev {
		if p.SupersededBy == r.ID {
			out = append(out, p) // superseded before a restart
			continue
		}
		if p.State != StateDispatched || p.RunID == 0 || p.SupersededBy != "" {
			continue
		}
		run, err := t.gh.GetRun(ctx, owner, name, p.RunID)
		if err != nil {
			if retry.Permanent(err) {
				continue
			}
			return nil, retry.Later(fmt.Errorf("reading run %d: %w", p.RunID, err))
		}
		if run.Status == "completed" {
			// Its workflow_run.completed webhook was lost: settle it now,
			// so later requests do not ask again.
			done, from := StateDone, p.State
			if err := t.st.UpdateRequest(ctx, p.ID, store.RequestFields{From: &from, State: &done}); err != nil && !errors.Is(err, store.ErrConflict) {
				return nil, retry.Later(err)
			}
			continue
		}
		if !queuedStatus(run.Status) {
			continue
		}
		if err := t.gh.CancelRun(ctx, owner, name, p.RunID); err != nil && !errors.Is(err, github.ErrConflict) && !retry.Permanent(err) {
			return nil, retry.Later(fmt.Errorf("cancelling run %d: %w", p.RunID, err))
		}
		st, by, from := StateSuperseded, r.ID, p.State
		if err := t.st.UpdateRequest(ctx, p.ID, store.RequestFields{From: &from, State: &st, SupersededBy: &by}); err != nil {
			if errors.Is(err, store.ErrConflict) {
				continue // its run completed meanwhile: nothing to supersede
			}
			return nil, retry.Later(err)
		}
		t.requests.WithLabelValues("superseded").Inc()
		t.log.Info("queued run superseded", "request", p.ID, "run", p.RunID, "by", r.ID)
		out = append(out, p)
	}
	return out, nil
}

func queuedStatus(s string) bool {
	switch s {
	case "queued", "requested", "waiting", "pending":
		return true
	}
	return false
}

// finish records a final state.
func (t *Trigger) finish(ctx context.Context, r *store.Request, state lifecycle.State, reason string) error {
	from := r.State
	if err := t.st.UpdateRequest(ctx, r.ID, store.RequestFields{From: &from, State: &state, Reason: &reason}); err != nil {
		return retry.Later(err)
	}
	r.State, r.Reason = state, reason
	t.requests.WithLabelValues(string(state)).Inc()
	return nil
}

// role returns the actor's role on the repository, cached for RoleTTL.
func (t *Trigger) role(ctx context.Context, owner, name, user string) (string, error) {
	key := strings.ToLower(owner + "/" + name + "/" + user)
	t.mu.Lock()
	c, ok := t.roles[key]
	t.mu.Unlock()
	if ok && t.now().Before(c.expires) {
		return c.role, nil
	}
	role, err := t.gh.Role(ctx, owner, name, user)
	if err != nil {
		return "", err
	}
	t.mu.Lock()
	t.roles[key] = cachedRole{role: role, expires: t.now().Add(t.roleTTL)}
	t.mu.Unlock()
	return role, nil
}

// ref is the branch whose workflow runs: the configured one, else the
// default branch (from the last event, else asked once).
func (t *Trigger) ref(ctx context.Context, repo *config.Repository) (string, error) {
	if repo.Ref != "" {
		return repo.Ref, nil
	}
	key := strings.ToLower(repo.Name)
	t.mu.Lock()
	b := t.branches[key]
	t.mu.Unlock()
	if b != "" {
		return b, nil
	}
	owner, name := splitRepo(repo.Name)
	b, err := t.gh.DefaultBranch(ctx, owner, name)
	if err != nil {
		return "", retry.Later(fmt.Errorf("reading the default branch: %w", err))
	}
	t.mu.Lock()
	t.branches[key] = b
	t.mu.Unlock()
	return b, nil
}
