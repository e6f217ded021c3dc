package trigger

import (
	"context"
	"time"
)

// RecoverSoon asks the loop to scan for trigger labels now and once more
// when the youngest of them is old enough for the scan
// (Options.RecoverMinAge).
// Call it when the store can write again after an outage: GitHub does not
// redeliver the labeled webhooks the manager answered with a 5xx, so the
// labels still on PRs are the only trace of those requests. (At start the
// loop does the same when the periodic scan is on, which covers a
// restart.)
func (t *Trigger) RecoverSoon() { t.scanSoon(true) }

// scanSoon queues one scan; a scan already queued is merged with it, and
// keeps "again" if either asked for it.
func (t *Trigger) scanSoon(again bool) {
	for {
		select {
		case t.rescan <- again:
			return
		default:
		}
		select {
		case queued := <-t.rescan:
			again = again || queued
		default:
		}
	}
}

// recoverAfterOutage scans now and, when asked, once more after the
// minimum label age so that the labels added during the last moments of
// the outage are found too. The scans run in the loop, never beside it.
func (t *Trigger) recoverAfterOutage(ctx context.Context, again bool) {
	t.log.Info("looking for labels whose webhook was refused or lost")
	t.Recover(ctx)
	if again {
		time.AfterFunc(t.minAge+time.Second, func() { t.scanSoon(false) })
	}
}
