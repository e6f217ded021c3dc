package trigger

import (
	"context"
	"errors"
	"fmt"

	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/store"
)

// Operator requests a build on behalf of an operator (buildfleet trigger):
// the same path as a label, without a label to remove or a role to check
// (whoever holds the manager's config is trusted), with the actor recorded
// as operator:<name>. The PR's current head SHA is built.
func (t *Trigger) Operator(ctx context.Context, repoName string, pr int, tier, operator string) (store.Request, error) {
	repo := t.cfg.Repository(repoName)
	if repo == nil {
		return store.Request{}, fmt.Errorf("repository %s is not configured", repoName)
	}
	if len(t.cfg.StablePools(tier)) == 0 {
		return store.Request{}, fmt.Errorf("tier %q has no stable pool (tiers: %v)", tier, t.cfg.Tiers())
	}
	owner, name := splitRepo(repo.Name)
	p, err := t.gh.PullRequest(ctx, owner, name, pr)
	if errors.Is(err, github.ErrNotFound) {
		return store.Request{}, fmt.Errorf("%s has no pull request #%d", repo.Name, pr)
	}
	if err != nil {
		return store.Request{}, fmt.Errorf("reading pull request #%d: %w", pr, err)
	}
	if p.State != "open" {
		return store.Request{}, fmt.Errorf("pull request #%d is %s", pr, p.State)
	}
	r := store.Request{
		ID: randomID(), DeliveryID: "operator", Repo: repo.Name, PR: pr, SHA: p.HeadSHA, Tier: tier,
		Actor: "operator:" + operator, Role: "operator", State: StateAccepted, LabelRemoved: true,
		CreatedAt: t.now(),
	}
	stored, _, err := t.st.CreateRequest(ctx, r)
	if err != nil {
		return store.Request{}, err
	}
	yes := true
	if err := t.st.UpdateRequest(ctx, r.ID, store.RequestFields{LabelRemoved: &yes}); err != nil {
		return store.Request{}, err
	}
	stored.LabelRemoved = true
	if err := t.advance(ctx, stored); err != nil {
		return stored, err
	}
	return t.st.Request(ctx, r.ID)
}
