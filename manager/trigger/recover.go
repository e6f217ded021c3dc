package trigger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/buildfleet/buildfleet/manager/store"
)

// defaultRecoverMinAge leaves young labels to their webhook, which is
// likely on its way (Options.RecoverMinAge). A labeled webhook delivered
// later than that, after the scan already built the PR, is recognised by
// Trigger.recovered (same PR, label and SHA) and not built again.
const defaultRecoverMinAge = 2 * time.Minute

// searchWait bounds how long the label scan waits for its search: an
// answer, or GitHub's search bucket to reset.
const searchWait = 10 * time.Second

// Recover finds open PRs that still carry a trigger label (their webhook
// was lost, or its handling failed for good) and handles each like the
// event: the commit the PR had when the label was added (from the stored
// pull_request webhooks, see headAt) and the label's latest labeled actor.
// When that commit cannot be known for sure, nothing is built and a
// comment asks for the label again.
// One search call per repository and label.
func (t *Trigger) Recover(ctx context.Context) {
	for _, repo := range t.cfg.Repositories {
		owner, name := splitRepo(repo.Name)
		for _, trig := range repo.Triggers {
			// The scan runs in the trigger's loop: a search bucket GitHub
			// paused (30 searches a minute, soon spent by scans at every
			// start) must skip this scan, not hold every request until
			// the bucket resets. With a deadline the client fails at once
			// rather than wait beyond it.
			sctx, cancel := context.WithTimeout(ctx, searchWait)
			prs, err := t.gh.LabeledOpenPRs(sctx, owner, name, trig.Label)
			cancel()
			if err != nil {
				t.log.Warn("looking for labelled PRs", "repo", repo.Name, "label", trig.Label, "err", err)
				continue
			}
			for _, n := range prs {
				if err := t.recoverOne(ctx, repo.Name, n, trig.Label, trig.Tier); err != nil {
					t.log.Warn("recovering a lost label event", "repo", repo.Name, "pr", n, "err", err)
				}
			}
		}
	}
}

func (t *Trigger) recoverOne(ctx context.Context, repoName string, pr int, label, tier string) error {
	owner, name := splitRepo(repoName)
	ev, err := t.gh.LastLabelEvent(ctx, owner, name, pr, label)
	if err != nil {
		return fmt.Errorf("finding who added the label: %w", err)
	}
	actor, at := ev.Actor, ev.At
	if t.now().Sub(at) < t.minAge {
		return nil
	}
	p, err := t.gh.PullRequest(ctx, owner, name, pr)
	if err != nil {
		return fmt.Errorf("reading the PR: %w", err)
	}
	// The commit the PR had when the label was added: a trusted member
	// vouched for that one only, never for a later push.
	points, err := t.headHistory(ctx, repoName, pr)
	if err != nil {
		return err
	}
	if labelPending(points, label, at) {
		// The event's own webhook is stored and not yet handled (a burst's
		// backlog): it makes the request, with its own commit.
		return nil
	}
	sha, unknown := labelledHead(points, label, at), ""
	if sha == "" {
		sha, unknown = headAt(at, points, ev.HeadRewrites, p.HeadSHA)
	}
	if sha != "" {
		// A request for the labelled commit created after the label was
		// added already handles it (not one for another commit: an
		// earlier label's build, or a later push's).
		prev, err := t.st.PreviousRequests(ctx, store.Request{Repo: repoName, PR: pr, Tier: tier, CreatedAt: t.now()})
		if err != nil {
			return err
		}
		for _, q := range prev {
			if q.Label == label && q.SHA == sha && !q.CreatedAt.Before(at.Add(-time.Minute)) {
				return nil
			}
		}
	}
	h := sha256.Sum256([]byte("recovered\x00" + repoName + "\x00" + strconv.Itoa(pr) + "\x00" + label + "\x00" + at.UTC().Format(time.RFC3339Nano)))
	r := store.Request{
		ID: hex.EncodeToString(h[:8]), DeliveryID: "recovered", Repo: repoName, PR: pr, SHA: sha,
		// Created when the label was added (GitHub's clock), like a request
		// from the webhook: a late webhook of the same event is matched on it.
		Tier: tier, Label: label, Actor: actor, State: StateChecking, CreatedAt: at,
	}
	switch {
	case p.State != "open":
		r.Reason = "closed"
	case sha == "":
		// Nothing is built: the label is removed and a comment asks for it
		// again, a fresh event whose webhook carries the commit.
		r.Reason = reasonCommitUnknown + unknown
	}
	stored, fresh, err := t.st.CreateRequest(ctx, r)
	if err != nil {
		return err
	}
	if fresh && sha == "" {
		t.log.Warn("lost label event recovered, but the commit it was added on is unknown; nothing is built",
			"request", stored.ID, "repo", repoName, "pr", pr, "actor", actor, "why", unknown)
	} else if fresh {
		t.log.Info("lost label event recovered", "request", stored.ID, "repo", repoName, "pr", pr, "actor", actor, "sha", sha, "head", p.HeadSHA)
	}
	return t.advance(ctx, stored)
}

// reasonCommitUnknown starts the reason of a recovered request whose
// labelled commit cannot be known for sure (see headAt).
const reasonCommitUnknown = "the commit the label was added on is unknown: "
