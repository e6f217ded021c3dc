package manager

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/github"
)

// dispatchRounds is how many labels BenchmarkWebhookToDispatch times: a
// p99 of fewer than 100 samples is the maximum under another name.
const dispatchRounds = 120

// BenchmarkWebhookToDispatch measures the manager's own overhead, queued
// webhook stored → Nomad dispatch issued (the runners table's received_at
// and dispatched_at), over dispatchRounds labels of a one-builder tier on
// a real Nomad agent and ghsim. Each round waits for its job to finish, so
// every sample is one webhook meeting an idle manager, as DESIGN.md's
// figure (p99 ≤ 20 ms) means it; BenchmarkLabelToRunnerStarted's
// twenty rounds are too few for a p99.
func BenchmarkWebhookToDispatch(b *testing.B) {
	pools := []config.Pool{fleetPools()[0], fleetPools()[3]}
	// A round writes to GitHub about six times: at GitHub's 80 a minute
	// the rounds would wait on the budget (BenchmarkBurst's figure), not
	// on the manager.
	h, _ := newFleetHarnessWith(b, fleetSetup{pools: pools, writeLimits: []github.Limit{{N: 1 << 20, Per: time.Minute}}})
	ctx := context.Background()
	rounds := max(b.N, dispatchRounds)
	start := time.Now()
	b.ResetTimer()
	for i := range rounds {
		t0 := time.Now()
		if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
			b.Fatal(err)
		}
		eventually(b, "the job finished", func() bool {
			rs, _ := h.m.store.ListRequests(ctx, 1)
			if len(rs) == 0 || rs[0].CreatedAt.Before(t0) {
				return false
			}
			rows, _ := h.m.store.RunnersOfRequest(ctx, rs[0].ID)
			for _, r := range rows {
				if r.State != "completed" {
					return false
				}
			}
			return len(rows) > 0
		})
		if i == 0 {
			start = time.Now() // the first round warms the caches: not a sample
		}
	}
	b.StopTimer()
	lat, err := h.m.store.DispatchLatencies(ctx, start)
	if err != nil {
		b.Fatal(err)
	}
	if len(lat) < rounds-1 {
		b.Fatalf("%d dispatch latencies for %d rounds", len(lat), rounds-1)
	}
	slices.Sort(lat)
	pct := func(p int) time.Duration { return lat[(len(lat)*p+99)/100-1] }
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(float64(len(lat)), "samples")
	b.ReportMetric(ms(pct(50)), "webhook-to-dispatch-p50-ms")
	b.ReportMetric(ms(pct(90)), "webhook-to-dispatch-p90-ms")
	b.ReportMetric(ms(pct(99)), "webhook-to-dispatch-p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "webhook-to-dispatch-max-ms")
	b.Logf("%d samples: p50 %v, p90 %v, p99 %v, max %v; slowest %v", len(lat), pct(50), pct(90), pct(99), lat[len(lat)-1], lat[max(0, len(lat)-5):])
}
