package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/retry"
	"github.com/buildfleet/buildfleet/manager/store"
)

// marker is hidden in every comment of a request, so that after a crash
// the comment is found again instead of posted twice.
func marker(id string) string { return "<!-- buildfleet:request=" + id + " -->" }

// comment posts a request's comment once.
func (t *Trigger) comment(ctx context.Context, r *store.Request, repo *config.Repository, body string) error {
	if r.CommentID != 0 || repo.Comment == config.CommentOff {
		return nil
	}
	owner, name := splitRepo(r.Repo)
	if github.IsWithoutWaiting(ctx) && !t.gh.WriteRoom(ctx) {
		// Asked before the attempt is counted: a comment that waits for
		// the budget costs no store write.
		return retry.Later(fmt.Errorf("request %s: its comment waits for GitHub's write budget: %w", r.ID, github.ErrBudgetBusy))
	}
	if r.CommentTries > 0 {
		if err := t.settling(r); err != nil {
			return err
		}
		id, err := t.gh.FindComment(ctx, owner, name, r.PR, marker(r.ID))
		if err == nil {
			return t.recordComment(ctx, r, id)
		}
		if !errors.Is(err, github.ErrNotFound) {
			return retry.Later(fmt.Errorf("looking for the comment of request %s: %w", r.ID, err))
		}
	}
	tries := r.CommentTries + 1
	if err := t.st.UpdateRequest(ctx, r.ID, store.RequestFields{CommentTries: &tries}); err != nil {
		return retry.Later(err)
	}
	r.CommentTries = tries
	id, err := t.gh.Comment(ctx, owner, name, r.PR, body+"\n"+marker(r.ID))
	if errors.Is(err, github.ErrBudgetBusy) {
		// The room went between the question and the call (another
		// writer took it). Not sent: no earlier attempt to settle.
		tries--
		if uerr := t.st.UpdateRequest(ctx, r.ID, store.RequestFields{CommentTries: &tries}); uerr != nil {
			return retry.Later(uerr)
		}
		r.CommentTries = tries
		return retry.Later(fmt.Errorf("request %s: its comment waits for GitHub's write budget: %w", r.ID, err))
	}
	if retry.Permanent(err) {
		// The PR is gone or locked: the comment is not worth a stuck request.
		t.log.Warn("comment refused by GitHub", "request", r.ID, "err", err)
		return nil
	}
	if err != nil {
		return retry.Later(fmt.Errorf("commenting: %w", err))
	}
	return t.recordComment(ctx, r, id)
}

func (t *Trigger) recordComment(ctx context.Context, r *store.Request, id int64) error {
	if err := t.st.UpdateRequest(ctx, r.ID, store.RequestFields{CommentID: &id}); err != nil {
		return retry.Later(err)
	}
	r.CommentID = id
	return nil
}

func short(sha string) string {
	if len(sha) > 10 {
		return sha[:10]
	}
	return sha
}

func statusURL(cfg config.Config, id string) string {
	return strings.TrimSuffix(cfg.PublicURL, "/") + "/requests/" + id
}

func actorMention(actor string) string {
	if name, ok := strings.CutPrefix(actor, "operator:"); ok {
		return "operator " + name
	}
	return "@" + actor
}

func scheduledComment(cfg config.Config, r store.Request, superseded []store.Request) string {
	var b strings.Builder
	builders := builderNames(cfg, r)
	names, contexts := make([]string, len(builders)), make([]string, len(builders))
	prefix := config.DefaultContextPrefix
	if repo := cfg.Repository(r.Repo); repo != nil && repo.ContextPrefix != "" {
		prefix = repo.ContextPrefix
	}
	for i, n := range builders {
		names[i], contexts[i] = "`"+n+"`", "`"+prefix+n+"`"
	}
	fmt.Fprintf(&b, "🔨 **buildfleet**: %s scheduled a **%s** build of commit %s on %d builder(s): %s.\n\n",
		actorMention(r.Actor), r.Tier, r.SHA, len(builders), strings.Join(names, ", "))
	fmt.Fprintf(&b, "The build uses exactly this commit, the head of the PR when the label was added; later pushes are not built. ")
	fmt.Fprintf(&b, "Results appear on the commit as %s. Status: %s\n\n", strings.Join(contexts, ", "), statusURL(cfg, r.ID))
	for _, s := range superseded {
		fmt.Fprintf(&b, "This replaces the still-queued build of %s (run %d), which was cancelled.\n\n", short(s.SHA), s.RunID)
	}
	if r.Label != "" {
		fmt.Fprintf(&b, "To build again (for example after a new push), add the label `%s` again.\n", r.Label)
	}
	return b.String()
}

// builderNames are the builders the request dispatched (its builders
// input), or the tier's stable pools before that is recorded.
func builderNames(cfg config.Config, r store.Request) []string {
	var bs []struct {
		Name string `json:"name"`
	}
	if json.Unmarshal([]byte(r.Builders), &bs) == nil && len(bs) > 0 {
		out := make([]string, len(bs))
		for i, b := range bs {
			out[i] = b.Name
		}
		return out
	}
	var out []string
	for _, p := range cfg.StablePools(r.Tier) {
		out = append(out, p.Name)
	}
	return out
}

func refusalComment(r store.Request, trig *config.Trigger) string {
	return fmt.Sprintf("🔨 **buildfleet**: @%s, the label `%s` asks for a **%s** build, which needs the **%s** role or higher on this repository (yours: %s). "+
		"The label was removed and nothing was built. A core developer or triager can add it.\n",
		r.Actor, r.Label, r.Tier, trig.MinRole, r.Role)
}

func commitUnknownComment(r store.Request) string {
	return fmt.Sprintf("🔨 **buildfleet**: the label `%s` (added by %s) was found on this PR, but its event never reached buildfleet, "+
		"and the commit the PR had when the label was added cannot be known for sure (%s). "+
		"Nothing was built: a build must use exactly the commit that was vouched for. The label was removed; add it again to build the PR's current head.\n",
		r.Label, actorMention(r.Actor), strings.TrimPrefix(r.Reason, reasonCommitUnknown))
}

func failedComment(r store.Request, err error) string {
	return fmt.Sprintf("🔨 **buildfleet**: the **%s** build of %s could not be started: GitHub refused the workflow dispatch (%v). "+
		"This is a problem of the fleet's set-up, not of this PR; the maintainers were told in the manager's log.\n", r.Tier, short(r.SHA), err)
}
