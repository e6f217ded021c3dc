package manager

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
)

// TestBuilderWithoutHostEndsAfterWaitTimeout: with the only host
// ineligible, the builder's result says from the start that it waits and
// why, ends as a fleet error naming Nomad's reason once the pool's
// wait_timeout (shortened to 3 s) has passed, the summary comment comes,
// and the request ends as a fleet error.
func TestBuilderWithoutHostEndsAfterWaitTimeout(t *testing.T) {
	pools := []config.Pool{fleetPools()[0], fleetPools()[3]} // quick and refleak
	pools[0].WaitTimeout = config.Duration(3 * time.Second)
	pool := pools[0]
	h, ag := newFleetHarnessWith(t, fleetSetup{pools: pools, waitingAfter: time.Second,
		configure: func(c *config.Config) { c.Repositories[0].Comment = config.CommentBoth }}) // the summary comment is opt-in
	if _, err := ag.Client.Nodes().ToggleEligibility(ag.NodeID, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.waitFinal(1, 60*time.Second)
	ctxName := "buildfleet/" + pool.Name
	s := h.finalStatuses()[ctxName]
	if s.State != "error" || !strings.Contains(s.Description, "no host within 3s: no eligible host") {
		t.Errorf("final status %+v, want a fleet error naming Nomad's reason", s)
	}
	waited := false
	for _, x := range h.statuses(h.sha) {
		if x.State == "pending" && strings.HasPrefix(x.Description, "queued: no eligible host in "+pool.Name) {
			waited = true
		}
	}
	if !waited {
		t.Errorf("no pending result said why it waited: %+v", h.statuses(h.sha))
	}
	eventually(t, "summary comment", func() bool {
		for _, c := range h.comments() {
			if body, _ := c["body"].(string); strings.Contains(body, "has finished") && strings.Contains(body, "1 fleet error(s)") {
				return true
			}
		}
		return false
	})
	eventually(t, "request ended", func() bool {
		reqs, _ := h.m.store.ListRequests(context.Background(), 1)
		return len(reqs) == 1 && reqs[0].State == "done" && reqs[0].Reason == "fleet_error"
	})
	// Its runner was released: no child of the pool waits on Nomad.
	eventually(t, "child released", func() bool {
		jobs, _, err := ag.Client.Jobs().List(nil)
		if err != nil {
			return false
		}
		for _, j := range jobs {
			if j.ParentID != "" && !j.Stop && j.Status != "dead" {
				return false
			}
		}
		return true
	})
}
