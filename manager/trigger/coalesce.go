package trigger

import (
	"context"
	"fmt"

	"github.com/buildfleet/buildfleet/manager/retry"
	"github.com/buildfleet/buildfleet/manager/store"
)

// coalesced finds an older request for the same PR, commit and tier that
// is still in flight (accepted, locating, or dispatched with its run not
// completed). A new one is then not dispatched again: it ends skipped
// with the older one's id, after its label was removed like any other,
// and without a comment. A burst of identical label events (people
// labelling twice, a bot, redeliveries under new GUIDs) costs one run
// and one comment instead of one each.
//
// Only older requests count (ties broken by id), so of two identical
// requests exactly one goes on, whichever is handled first.
func (t *Trigger) coalesced(ctx context.Context, r store.Request) (string, error) {
	if r.RunID != 0 || r.DispatchTries > 0 {
		return "", nil // already on its way: it is the one others join
	}
	prev, err := t.st.PreviousRequests(ctx, r)
	if err != nil {
		return "", retry.Later(fmt.Errorf("looking for identical requests: %w", err))
	}
	for _, p := range prev {
		if p.SHA != r.SHA || p.ID == r.ID {
			continue
		}
		if p.CreatedAt.Equal(r.CreatedAt) && p.ID > r.ID {
			continue
		}
		switch p.State {
		case StateAccepted, StateLocating:
			return p.ID, nil
		case StateDispatched:
			// Its run may have completed with the webhook lost: a label
			// added to rebuild must not be swallowed. Asked only here.
			owner, name := splitRepo(r.Repo)
			run, err := t.gh.GetRun(ctx, owner, name, p.RunID)
			if err != nil {
				return "", retry.Later(fmt.Errorf("reading run %d of request %s: %w", p.RunID, p.ID, err))
			}
			if run.Status != "completed" {
				return p.ID, nil
			}
		}
	}
	return "", nil
}
