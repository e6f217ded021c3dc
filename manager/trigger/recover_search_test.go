package trigger

import (
	"context"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/manager/github"
)

// TestLabelScanSkipsAPausedSearchBucket: the label scan runs in the
// trigger's loop. When GitHub's search bucket (30 a minute) is spent, as
// scans at many restarts in a minute spend it, the scan is skipped at once
// instead of holding every request until the bucket resets.
func TestLabelScanSkipsAPausedSearchBucket(t *testing.T) {
	e := newRecoverEnv(t, time.Minute)
	// The scan's deadline is on the wall clock: GitHub's clock is too.
	e.clk.add(time.Since(e.clk.now()))
	var slept []time.Duration
	gh, err := github.New(e.trig.cfg.GitHub, github.Options{Retry: github.Retry{
		Now: e.clk.now,
		Sleep: func(ctx context.Context, d time.Duration) error {
			slept = append(slept, d)
			e.clk.add(d)
			return ctx.Err()
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.trig.gh = gh
	ctx := context.Background()
	for i := 0; i < 30; i++ {
		if _, err := gh.LabeledOpenPRs(ctx, "python", "cpython", "🔨 test-with-buildbots"); err != nil {
			t.Fatalf("search %d: %v", i+1, err)
		}
	}
	e.trig.Recover(ctx)
	for _, d := range slept {
		if d > searchWait {
			t.Errorf("the scan waited %s for the search bucket: the trigger's loop would hold every request that long", d)
		}
	}
}
