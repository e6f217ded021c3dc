package report

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
)

// TestStatusPostedBeforeACrashIsNotPostedAgain: a process killed after
// GitHub took a status and before the store recorded it leaves the row
// pending. The next process finds the status on GitHub and does not post
// it again (GitHub keeps every status posted: a second one is a duplicate
// on the PR and a write of the budget spent for nothing); a row whose
// post never reached GitHub is posted.
func TestStatusPostedBeforeACrashIsNotPostedAgain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reached bool // the dead process's post reached GitHub
		want    int  // status writes in all
	}{
		{"post reached GitHub", true, 1},
		{"post never sent", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, config.ReportStatus, config.CommentOff)
			ctx := context.Background()
			done := result("r1", 1, "linux", StateSuccess)
			done.StartedAt, done.CompletedAt = f.clk.Now(), f.clk.Now().Add(time.Minute)
			f.report(t, done)
			// What the killed process did: tried, and maybe posted.
			if err := f.st.ReportTried(ctx, "r1", "buildbot/linux"); err != nil {
				t.Fatal(err)
			}
			if tc.reached {
				state, desc := statusOf(done)
				if err := f.gh.CreateStatus(ctx, "python", "cpython", sha, state, done.HTMLURL, desc, "buildbot/linux"); err != nil {
					t.Fatal(err)
				}
			}
			// The restarted process replays the job's completion (its
			// delivery was not marked handled), a second later.
			again := done
			again.CompletedAt = again.CompletedAt.Add(time.Second)
			f.report(t, again)
			if err := f.rp.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			if len(f.gh.writes) != tc.want {
				t.Errorf("status writes %q, want %d", f.gh.writes, tc.want)
			}
			if n, err := f.st.PendingReports(ctx); err != nil || n != 0 {
				t.Errorf("%d reports pending (%v), want none", n, err)
			}
			// The row counts as written: a later replay writes nothing.
			f.report(t, again)
			if err := f.rp.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			if len(f.gh.writes) != tc.want {
				t.Errorf("after a replay: %s", fmt.Sprint(f.gh.writes))
			}
		})
	}
}
