package manager

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/ghsim"
	"github.com/buildfleet/buildfleet/internal/nomadtest"
)

// The reliability suite: N labelled PRs × 2 builders on a real Nomad agent
// and ghsim, under each fault scenario, counting what a user would see lost
// or doubled, and the drain time against the least time GitHub's write
// budget allows for the writes the burst took.
//
// `make test` runs its short form (3 PRs per scenario, every scenario):
// it asserts no loss and no duplicate, with a generous deadline and no
// timing figure held to a bound. `make proof` sets BUILDFLEET_PROOF and
// runs the full form: N from BUILDFLEET_PROOF_N (default 100), and holds
// the drain to proofRatioMax × the write bound wherever that bound is at
// least proofRatioMin × the fleet's own floor (see fleetFloor): below that
// the machine, not GitHub's budget, sets the pace, and the ratio is only
// printed. BUILDFLEET_PROOF_SCENARIOS, a comma-separated list of names,
// picks scenarios (default all, including those other files add).

// proofScenario is one fault set: ghsim faults that fire with their ratio
// on every matching call or delivery, and optionally a change to the
// harness before it starts and an action run while the burst drains.
type proofScenario struct {
	name   string
	faults []ghsim.Fault
	// setup, when set, changes the harness before the manager starts.
	setup func(t *testing.T, s *fleetSetup)
	// before, when set, runs just before the PRs are labelled.
	before func(t *testing.T, h *harness, ag *nomadtest.Agent)
	// during, when set, runs once the PRs are labelled, alongside the
	// drain; the drain counts as done only after it returned.
	during func(t *testing.T, h *harness, ag *nomadtest.Agent)
}

// proofScenarios are the scenarios by name, in the order they run. Other
// files add theirs in init.
var proofScenarios = []proofScenario{
	{name: "none"},
	// 20 % of GitHub's answers are 5xx and 20 % of the rest 429 with
	// Retry-After, as the issue asks (at least 20 % each).
	{name: "github", faults: []ghsim.Fault{
		{Kind: ghsim.FaultServerError, Path: `^/repos/`, Ratio: 0.2, Status: 502},
		{Kind: ghsim.FaultTooMany, Path: `^/repos/`, Ratio: 0.2, RetryAfter: 1},
	}},
	{name: "webhooks", faults: []ghsim.Fault{
		{Kind: ghsim.FaultDrop, Ratio: 0.1},
		{Kind: ghsim.FaultDuplicate, Ratio: 0.1},
		{Kind: ghsim.FaultReorder, Ratio: 0.1},
	}},
}

func TestProof(t *testing.T) {
	n := 3 // the short form
	if os.Getenv("BUILDFLEET_PROOF") != "" {
		n = 100
	}
	if v := os.Getenv("BUILDFLEET_PROOF_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("BUILDFLEET_PROOF_N=%q: want a positive number", v)
		}
	}
	want := map[string]bool{}
	for _, s := range strings.Split(os.Getenv("BUILDFLEET_PROOF_SCENARIOS"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			want[s] = true
		}
	}
	for _, sc := range proofScenarios {
		if len(want) > 0 && !want[sc.name] {
			continue
		}
		t.Run(sc.name, func(t *testing.T) { proofRun(t, n, sc) })
	}
}

// proofRun labels n PRs at once under faults and checks every request
// drained: one run each, one final result per builder on each head, no
// duplicate comment, no orphan Nomad job or runner registration.
func proofRun(t *testing.T, n int, sc proofScenario) {
	builders := []config.Pool{fleetPools()[0], fleetPools()[1]}
	limits := proofWriteLimits()
	// The label scan runs every second and builds labels older than 5 s
	// plus 70 ms per PR (12 s for 100: the default two minutes, run
	// proofWriteScale times faster like GitHub's windows), so a dropped
	// labeled webhook is recovered within the drain; younger labels are
	// left to their webhook, which may still be on its way (one stored
	// but not yet handled is left to it at any age).
	setup := fleetSetup{pools: append(builders, fleetPools()[3]),
		reconcileEvery: 300 * time.Millisecond, recoverEvery: time.Second,
		recoverMinAge: 5*time.Second + time.Duration(n)*70*time.Millisecond,
		writeLimits:   limits, ghsim: ghsim.Options{SecondaryLimits: ghsimLimits(limits)},
		configure: func(c *config.Config) { c.Pools[0].MaxRunners, c.Pools[1].MaxRunners = 8, 8 }}
	if sc.setup != nil {
		sc.setup(t, &setup)
	}
	h, ag := newFleetHarnessWith(t, setup)
	type pr struct {
		n   int
		sha string
	}
	// Every PR is opened while the manager listens (the harness's own PR
	// was opened before its webhook existed), as on GitHub: a label scan
	// that recovers a dropped labeled event knows the labelled commit from
	// the PR's recorded webhooks, and without them builds nothing.
	var prs []pr
	for i := 1; i <= n; i++ {
		sha := fmt.Sprintf("%040x", 0xc0ffee00+i)
		num, err := h.gh.OpenPR(e2eRepo, ghsim.PRSpec{Title: fmt.Sprintf("gh-%d: fix", i+1), Author: "contributor", Fork: "contributor", HeadSHA: sha})
		if err != nil {
			t.Fatal(err)
		}
		prs = append(prs, pr{num, sha})
	}
	for _, f := range sc.faults {
		if err := h.gh.AddFault(f); err != nil {
			t.Fatal(err)
		}
	}
	if sc.before != nil {
		sc.before(t, h, ag)
	}
	start := time.Now()
	for _, p := range prs {
		if err := h.gh.LabelPR(e2eRepo, p.n, quick, "triager"); err != nil {
			t.Fatal(err)
		}
	}
	during := make(chan struct{})
	if sc.during != nil {
		go func() { defer close(during); sc.during(t, h, ag) }()
	} else {
		close(during)
	}
	final := func(sha string) map[string]int {
		out := map[string]int{}
		for _, s := range h.statuses(sha) {
			if s.State != "pending" {
				out[s.Context]++
			}
		}
		return out
	}
	drained := func() bool {
		select {
		case <-during:
		default:
			return false
		}
		for _, p := range prs {
			if len(final(p.sha)) < len(builders) {
				return false
			}
		}
		reqs, _ := h.m.store.ListRequests(context.Background(), n+10)
		for _, r := range reqs {
			if !r.State.Final() || r.State == "done" && r.Reason == "" {
				return false // in flight, or no outcome yet: a builder's result is not final
			}
		}
		return len(reqs) >= n
	}
	// Generous: a busy machine must not fail the short form, and the full
	// form waits for about ten writes a request at the budget's pace, three
	// times over (a GitHub that fails 40 % of calls spends budget on every
	// retry): a late result is a slow drain, held to the bound below, not a
	// lost one.
	deadline := start.Add(time.Duration(120+3*n)*time.Second + 3*writeBound(10*n, setup.writeLimits))
	for !drained() && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	drain := time.Since(start)
	// Faults off for the counting (the test reads through the REST API too).
	h.gh.ClearFaults()
	reqs, _ := h.m.store.ListRequests(context.Background(), 10*n)
	runs := h.runs()
	oneResult, missing, doubled := 0, 0, 0
	byState := map[string]int{}    // the final results, by state
	notSuccess := map[string]int{} // what the others said
	for _, p := range prs {
		fs := final(p.sha)
		for _, s := range h.statuses(p.sha) {
			if s.State != "pending" {
				byState[s.State]++
			}
			if s.State != "pending" && s.State != "success" {
				notSuccess[s.State+": "+s.Description]++
			}
		}
		for _, b := range builders {
			switch fs["buildfleet/"+b.Name] {
			case 0:
				missing++
			case 1:
				oneResult++
			default:
				doubled++
			}
		}
	}
	seen := map[string]int{}
	dupComments := 0
	for _, c := range h.comments() {
		k := fmt.Sprint(c["issue_number"], "\x00", c["body"])
		if seen[k]++; seen[k] == 2 {
			dupComments++
		}
	}
	var orphans int
	var regs []string
	eventually(t, "no runner job alive on Nomad and no registration left", func() bool {
		orphans = 0
		jobs, _, err := ag.Client.Jobs().List(nil)
		if err != nil {
			return false
		}
		for _, j := range jobs {
			if strings.HasPrefix(j.ID, "runner-") && strings.Contains(j.ID, "/dispatch-") && j.Status != "dead" {
				orphans++
			}
		}
		regs = h.ghRunnerNames()
		return orphans == 0 && len(regs) == 0
	})
	for _, p := range prs {
		if fs := final(p.sha); len(fs) < len(builders) {
			var req any = "no request"
			for _, r := range reqs {
				if r.PR == p.n {
					req = fmt.Sprintf("request %s state %s run %d reason %q", r.ID, r.State, r.RunID, r.Reason)
					t.Logf("PR %d: %s; results %v; jobs %+v", p.n, req, fs, h.jobsOf(r.ID))
				}
			}
		}
	}
	for d, k := range notSuccess {
		t.Logf("proof: %d final result(s) %q", k, d)
	}
	failedWrites := map[string]int{}
	for _, c := range h.gh.Calls() {
		if k := writeKind(c.Method, c.Path); k != "" && c.Status >= 400 {
			failedWrites[fmt.Sprintf("%s %d %s", k, c.Status, c.Fault)]++
		}
	}
	for k, v := range failedWrites {
		t.Logf("proof: %d write(s) answered %s", v, k)
	}
	writes := writeTally(t, h, n, len(builders))
	attempts, refused := budgetSpent(h)
	bound := writeBound(attempts, setup.writeLimits)
	floor, timed := fleetFloor(context.Background(), h, reqs)
	t.Logf("proof: %d PRs × %d builders: requests %d, runs dispatched %d, jobs with exactly one final result %d/%d (missing %d, doubled %d), duplicate comments %d, orphan Nomad jobs %d, runner registrations left %d; final results by state %v",
		n, len(builders), len(reqs), len(runs), oneResult, n*len(builders), missing, doubled, dupComments, orphans, len(regs), byState)
	t.Logf("proof: writes %d (%.2f per request, %.2f per builder), budget spent %d (secondary-limit refusals %d), windows %s; drained in %s, write bound %s (%s), fleet floor %s (%d jobs timed)",
		writes, float64(writes)/float64(n), float64(writes)/float64(n*len(builders)), attempts, refused, limitsString(setup.writeLimits),
		drain.Round(time.Millisecond), bound, ratioString(drain, bound), floor.Round(time.Millisecond), timed)
	if bound > 0 && float64(bound) >= proofRatioMin*float64(floor) {
		if float64(drain) > proofRatioMax*float64(bound) {
			t.Errorf("drained in %s: over %.2f× the write bound %s", drain.Round(time.Millisecond), proofRatioMax, bound)
		}
	} else {
		t.Logf("proof: drain/bound not held to %.2f×: the bound %s is under %.0f× the fleet floor %s (the machine, not GitHub's budget, sets the pace)",
			proofRatioMax, bound, proofRatioMin, floor.Round(time.Millisecond))
	}
	if len(reqs) != n {
		t.Errorf("%d requests, want %d", len(reqs), n)
	}
	if len(runs) != n {
		t.Errorf("%d runs dispatched, want exactly %d (one per request)", len(runs), n)
	}
	if oneResult != n*len(builders) {
		t.Errorf("%d jobs with exactly one final result, want %d", oneResult, n*len(builders))
	}
	if dupComments != 0 {
		t.Errorf("%d duplicate comments", dupComments)
	}
	// Every step of the workflow passes: a failure is a fault (or the
	// fleet) turned into the PR's failure. Without faults nothing may
	// even be the fleet's error.
	if byState["failure"] != 0 {
		t.Errorf("%d builds reported as the PR's failure, though every step passes", byState["failure"])
	}
	if len(sc.faults) == 0 && sc.setup == nil && byState["success"] != oneResult {
		t.Errorf("without faults %d of %d results are not success", oneResult-byState["success"], oneResult)
	}
	if refused != 0 {
		t.Errorf("%d writes refused by GitHub's secondary limit: the manager spent more than its windows allow", refused)
	}
	for _, r := range reqs {
		if r.State != "done" || r.Reason == "" {
			t.Errorf("request %s (PR %d) ended in state %s with outcome %q", r.ID, r.PR, r.State, r.Reason)
		}
	}
}
