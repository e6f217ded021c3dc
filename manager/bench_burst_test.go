package manager

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/ghsim"
	"github.com/buildfleet/buildfleet/manager/github"
)

// burstScale shrinks GitHub's write windows for BenchmarkBurst: 80 a
// minute and 500 an hour become 80 per 3 s and 500 per 3 min, so a burst
// of about 1,000 writes, which GitHub lets drain in no less than an hour,
// is bounded at 3 min here. Shrunk further, the machine's own pace (each
// of the 200 jobs a runner start and a few seconds of steps, 12 at a
// time per pool) would come near the bound and the figure would measure
// the machine, not the use of GitHub's budget.
const burstScale = 20

// BenchmarkBurst labels 100 PRs at once, each building on 2 builders,
// through the real trigger, fleet and reporter (ghsim, a Nomad dev agent,
// ghsim's runner), under GitHub's write budget with its windows scaled by
// burstScale. GitHub's budget, not the machine, bounds how fast such a
// burst drains, so its figures are against that bound:
//
//   - drain time (first label → every request done, every builder's final
//     result on its PR, no report left to write) against writeBound, the
//     least time the budget lets the writes the burst made take;
//   - content-creating GitHub calls per builder and per request, against
//     DESIGN.md's budget: 2 per request (label removal, dispatch) + 3 per
//     builder (JIT config, in progress, final result) + one comment.
func BenchmarkBurst(b *testing.B) {
	const prs = 100
	builders := []config.Pool{fleetPools()[0], fleetPools()[1]}
	limits := make([]github.Limit, 0, 2)
	for _, l := range github.DefaultWriteLimits() {
		limits = append(limits, github.Limit{N: l.N, Per: l.Per / burstScale})
	}
	h, _ := newFleetHarnessWith(b, fleetSetup{pools: append(builders, fleetPools()[3]),
		writeLimits: limits,
		// Enough runners that the machine is not what holds the burst
		// back: each of ghsim's runners sleeps through its steps.
		configure: func(c *config.Config) { c.Pools[0].MaxRunners, c.Pools[1].MaxRunners = 12, 12 }})
	type pr struct {
		n   int
		sha string
	}
	list := []pr{{h.pr, h.sha}}
	for i := 1; i < prs; i++ {
		sha := fmt.Sprintf("%040x", 0xb0a7000+i)
		n, err := h.gh.OpenPR(e2eRepo, ghsim.PRSpec{Title: fmt.Sprintf("gh-%d: fix", i+1), Author: "contributor", Fork: "contributor", HeadSHA: sha})
		if err != nil {
			b.Fatal(err)
		}
		list = append(list, pr{n, sha})
	}
	ctx := context.Background()
	before := len(h.gh.Calls()) // the burst's writes are the calls after these
	b.ResetTimer()
	start := time.Now()
	for _, p := range list {
		if err := h.gh.LabelPR(e2eRepo, p.n, quick, "triager"); err != nil {
			b.Fatal(err)
		}
	}
	// Drained: every request done, no result left to write, and every
	// builder's final result on its PR (read last: 100 reads of ghsim).
	drained := func() bool {
		reqs, err := h.m.store.ListRequests(ctx, prs+10)
		if err != nil || len(reqs) < prs {
			return false
		}
		for _, r := range reqs {
			if r.State != "done" {
				return false
			}
		}
		if n, err := h.m.store.PendingReports(ctx); err != nil || n > 0 {
			return false
		}
		for _, p := range list {
			final := map[string]bool{}
			for _, s := range h.statuses(p.sha) {
				if s.State != "pending" {
					final[s.Context] = true
				}
			}
			if len(final) < len(builders) {
				return false
			}
		}
		return true
	}
	// What the burst looks like every burstBucket: requests done, final
	// results written, results waiting to be written.
	var progress []string
	next := start.Add(burstBucket)
	progressNow := func() {
		reqs, _ := h.m.store.ListRequests(ctx, prs+10)
		done := 0
		for _, r := range reqs {
			if r.State == "done" {
				done++
			}
		}
		final := 0
		for _, p := range list {
			for _, s := range h.statuses(p.sha) {
				if s.State != "pending" {
					final++
				}
			}
		}
		pending, _ := h.m.store.PendingReports(ctx)
		progress = append(progress, fmt.Sprintf("%ds: %d done, %d final, %d to write", int(time.Since(start)/time.Second), done, final, pending))
	}
	deadline := start.Add(12 * time.Minute)
	for !drained() {
		if time.Now().After(next) {
			progressNow()
			next = next.Add(burstBucket)
		}
		if time.Now().After(deadline) {
			reqs, _ := h.m.store.ListRequests(ctx, prs+10)
			states := map[string]int{}
			for _, r := range reqs {
				states[string(r.State)]++
			}
			pending, _ := h.m.store.PendingReports(ctx)
			b.Fatalf("burst not drained after %s: requests by state %v, %d reports to write", time.Since(start).Round(time.Second), states, pending)
		}
		time.Sleep(250 * time.Millisecond)
	}
	drain := time.Since(start) // within one poll (250 ms) of the last write
	b.StopTimer()
	calls := h.gh.Calls()[before:]
	byKind, total := map[string]int{}, 0
	for _, c := range calls {
		if k := writeKind(c.Method, c.Path); k != "" && c.Status < 400 {
			byKind[k]++
			total++
		}
	}
	bound := writeBound(total, limits)
	nb := prs * len(builders)
	b.ReportMetric(drain.Seconds(), "drain-s")
	b.ReportMetric(bound.Seconds(), "write-bound-s")
	if bound > 0 {
		b.ReportMetric(float64(drain)/float64(bound), "x-vs-write-bound")
	}
	b.ReportMetric(float64(total), "writes")
	b.ReportMetric(float64(total)/float64(nb), "writes/builder")
	b.ReportMetric(float64(total)/float64(prs), "writes/request")
	design := 2 + 3*len(builders) + 1 // DESIGN.md's call budget of a request
	b.ReportMetric(float64(design)/float64(len(builders)), "design-writes/builder")
	b.ReportMetric(float64(design), "design-writes/request")
	b.ReportMetric(float64(total)/float64(prs*design), "x-vs-design-writes")
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var sb strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&sb, "; %s %d (%.2f/request)", k, byKind[k], float64(byKind[k])/prs)
	}
	b.Logf("writes by %s since the first label: %s", burstBucket, writeTimeline(calls, start))
	b.Logf("progress: %s", strings.Join(progress, " | "))
	b.Logf("%d requests × %d builders drained in %s (bound %s at 1/%d of GitHub's windows); %d writes: %.2f per builder, %.2f per request%s",
		prs, len(builders), drain.Round(time.Millisecond), bound, burstScale, total, float64(total)/float64(nb), float64(total)/prs, sb.String())
}

// burstBucket is the span of one column of writeTimeline.
const burstBucket = 10 * time.Second

// writeTimeline prints the content-creating calls made in each
// burstBucket since start, by kind: where in the burst the budget went.
func writeTimeline(calls []ghsim.Call, start time.Time) string {
	var buckets []map[string]int
	for _, c := range calls {
		k := writeKind(c.Method, c.Path)
		if k == "" || c.Status >= 400 {
			continue
		}
		i := max(0, int(c.Time.Sub(start)/burstBucket)) // ghsim's times are whole seconds
		for len(buckets) <= i {
			buckets = append(buckets, map[string]int{})
		}
		buckets[i][strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(k, "POST "), "DELETE "), "PATCH ")]++
	}
	var sb strings.Builder
	for i, m := range buckets {
		kinds := make([]string, 0, len(m))
		for k := range m {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, m[k]))
		}
		sort.Strings(kinds)
		fmt.Fprintf(&sb, " | %ds: %s", i*int(burstBucket/time.Second), strings.Join(kinds, ", "))
	}
	return sb.String()
}
