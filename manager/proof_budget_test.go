package manager

import (
	"context"
	"fmt"
	"time"

	"github.com/buildfleet/buildfleet/internal/ghsim"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/store"
)

// GitHub's write budget (80 content-creating calls a minute, 500 an hour
// per credential), not the machine, bounds how fast a burst drains. A
// burst of 100 requests takes about 900 writes, so at GitHub's own pace
// it drains in an hour; the proof runs GitHub's windows faster by
// proofWriteScale, on both sides: the manager's budget (WriteLimits) and
// ghsim's secondary limit (a manager that spent more than the windows
// allow would get 403s, counted as refusals).
const proofWriteScale = 10

// proofWriteLimits are GitHub's windows, proofWriteScale times faster.
func proofWriteLimits() []github.Limit {
	var out []github.Limit
	for _, l := range github.DefaultWriteLimits() {
		out = append(out, github.Limit{N: l.N, Per: l.Per / proofWriteScale})
	}
	return out
}

// ghsimLimits are the same windows for ghsim's secondary limit.
func ghsimLimits(ls []github.Limit) []ghsim.SecondaryLimit {
	var out []ghsim.SecondaryLimit
	for _, l := range ls {
		out = append(out, ghsim.SecondaryLimit{N: l.N, Per: l.Per})
	}
	return out
}

// proofRatioMin is how many times the fleet's own floor the write bound
// must be before the drain is held to proofRatioMax × the bound.
const (
	proofRatioMin = 2.0
	proofRatioMax = 1.25
)

// budgetSpent counts the content-creating calls the manager made (every
// attempt spends budget, with GitHub as in the manager: a retried write
// counts again) and those ghsim refused for its secondary limit.
func budgetSpent(h *harness) (attempts, refused int) {
	for _, c := range h.gh.Calls() {
		if writeKind(c.Method, c.Path) == "" {
			continue
		}
		attempts++
		if c.Fault == "secondary_limit" {
			refused++
		}
	}
	return attempts, refused
}

// fleetFloor is the least time the fleet itself would take for the
// burst's jobs with writes free: the pool with the most jobs per runner
// slot runs them in ceil(jobs / max_runners) rounds, each as long as the
// quickest job took from its Nomad dispatch to its completion (the
// quickest is one whose JIT config did not wait for the budget, so the
// floor is the machine's share of the drain, not the budget's). It
// returns the floor and the number of jobs timed.
func fleetFloor(ctx context.Context, h *harness, reqs []store.Request) (time.Duration, int) {
	jobs := map[string]int{}
	var quickest time.Duration
	timed := 0
	for _, r := range reqs {
		rs, err := h.m.store.RunnersOfRequest(ctx, r.ID)
		if err != nil {
			continue
		}
		for _, x := range rs {
			if x.State != "completed" || x.DispatchedAt.IsZero() || x.UpdatedAt.Before(x.DispatchedAt) {
				continue
			}
			jobs[x.Pool]++
			if took := x.UpdatedAt.Sub(x.DispatchedAt); timed == 0 || took < quickest {
				quickest = took
			}
			timed++
		}
	}
	rounds := 0
	for _, p := range h.cfg.Pools {
		if n := jobs[p.Name]; n > 0 && p.MaxRunners > 0 {
			rounds = max(rounds, (n+p.MaxRunners-1)/p.MaxRunners)
		}
	}
	return time.Duration(rounds) * quickest, timed
}

func limitsString(ls []github.Limit) string {
	out := ""
	for i, l := range ls {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%d per %s", l.N, l.Per)
	}
	return out
}

// ratioString is drain / bound, or why there is none.
func ratioString(drain, bound time.Duration) string {
	if bound == 0 {
		return "the writes fit in one window"
	}
	return fmt.Sprintf("drain/bound %.2f", float64(drain)/float64(bound))
}
