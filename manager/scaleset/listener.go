package scaleset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/actions/actions-runner-controller/github/actions"
	"github.com/google/uuid"

	"github.com/buildfleet/buildfleet/config"
)

// listener follows one scale set's queue. Its states, one goroutine:
//
//	no set ──get by name, else create (its label: its name)──▶ set
//	set ──create session──▶ listening
//	      └─ 409: the stale session id kept in the store is deleted, then
//	         create again; no id kept: another listener holds it, wait
//	listening ──acquirable jobs (what came while no one listened), and the
//	          REST state of the jobs the pool's runners were started for──▶
//	          (available jobs left alone: looked at again every second or so)
//	          ──long-poll a message─▶ store its deliveries ─▶ delete it ──┐
//	             ▲─────────────────────────────────────────────────────────┘
//	          token expired (401) ──▶ refresh the session
//	          session gone ──▶ set (create a new one)
//	ctx ends ──▶ session deleted, its id forgotten
//
// Failures wait o.Backoff, doubling up to a minute.
type listener struct {
	o    Options
	pool config.Pool
	repo string
	svc  Service
	runs *runCache // shared by the listeners
	log  *slog.Logger

	mu      sync.Mutex // guards set and session (the fleet acquires from its goroutines)
	set     *actions.RunnerScaleSet
	session *actions.RunnerScaleSetSession
	// jobs remembers each runner request's job, so that the messages
	// after JobAvailable cost no API call.
	jobs map[int64]jobRef
	// unadopted says that available jobs were left alone (which are
	// buildfleet's could not be told yet); adoptAt is when to look again.
	// Only the listener's goroutine uses them.
	unadopted bool
	adoptAt   time.Time
}

func (l *listener) scaleSet() *actions.RunnerScaleSet {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.set
}

func (l *listener) current() *actions.RunnerScaleSetSession {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.session
}

// sessionKey is where the open session's id is kept in the store.
func (l *listener) sessionKey(setID int) string {
	return "scaleset.session." + strconv.Itoa(setID)
}

func (l *listener) run(ctx context.Context) {
	defer l.close()
	wait := l.o.Backoff
	var last int64
	fresh := false
	for ctx.Err() == nil {
		err := l.step(ctx, &last, &fresh)
		if err == nil {
			wait = l.o.Backoff
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errRetry) {
			// Not a failure: a message waits for something else (a
			// dispatch being recorded); read it again soon.
			l.log.Debug("message kept for later", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(l.o.Backoff):
			}
			continue
		}
		l.log.Warn("scale set listener", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}

// step does the next thing the state calls for.
func (l *listener) step(ctx context.Context, last *int64, fresh *bool) error {
	switch {
	case l.scaleSet() == nil:
		return l.ensureSet(ctx)
	case l.current() == nil:
		if err := l.openSession(ctx); err != nil {
			return err
		}
		*last, *fresh = 0, true
		return nil
	case *fresh:
		// What came while no one listened: the available jobs, and what
		// became of the jobs in flight.
		if err := l.adoptAvailable(ctx); err != nil {
			return err
		}
		if err := l.catchUp(ctx); err != nil {
			return fmt.Errorf("catching up with jobs in flight: %w", err)
		}
		*fresh = false
		return nil
	case l.unadopted && !l.o.Now().Before(l.adoptAt):
		// Available jobs left alone last time (a dispatch was not yet
		// recorded, say): look again.
		return l.adoptAvailable(ctx)
	}
	if l.unadopted {
		// Poll briefly, so that the next look comes soon.
		pctx, cancel := context.WithTimeout(ctx, adoptEvery(l.o.Backoff))
		defer cancel()
		err := l.poll(pctx, last)
		if pctx.Err() != nil && ctx.Err() == nil {
			return nil
		}
		return err
	}
	return l.poll(ctx, last)
}

// adoptEvery is how soon available jobs left alone are looked at again.
func adoptEvery(backoff time.Duration) time.Duration { return max(backoff, time.Second) }

// adoptAvailable lists the set's available jobs and adopts those of
// buildfleet's runs.
func (l *listener) adoptAvailable(ctx context.Context) error {
	list, err := l.svc.GetAcquirableJobs(ctx, l.scaleSet().Id)
	if err != nil {
		return fmt.Errorf("listing acquirable jobs: %w", err)
	}
	left, err := l.adopt(ctx, list.Jobs)
	if err != nil {
		return fmt.Errorf("adopting available jobs: %w", err)
	}
	l.unadopted, l.adoptAt = left, l.o.Now().Add(adoptEvery(l.o.Backoff))
	return nil
}

// ensureSet gets the pool's scale set, or creates it in the configured
// runner group, labelled with its name.
func (l *listener) ensureSet(ctx context.Context) error {
	g, err := l.svc.GetRunnerGroupByName(ctx, l.pool.ScaleSet.RunnerGroup)
	if err != nil {
		return fmt.Errorf("runner group %q: %w", l.pool.ScaleSet.RunnerGroup, err)
	}
	set, err := l.svc.GetRunnerScaleSet(ctx, int(g.ID), l.pool.ScaleSet.Name)
	if err != nil {
		return fmt.Errorf("getting scale set %q: %w", l.pool.ScaleSet.Name, err)
	}
	if set == nil {
		// Jobs ask for a scale set by its name (runs-on: <name>), as ARC
		// labels its sets; the builders input carries it (trigger).
		set, err = l.svc.CreateRunnerScaleSet(ctx, &actions.RunnerScaleSet{
			Name: l.pool.ScaleSet.Name, RunnerGroupId: int(g.ID),
			Labels:        []actions.Label{{Type: "System", Name: l.pool.ScaleSet.Name}},
			RunnerSetting: actions.RunnerSetting{Ephemeral: true, IsElastic: true, DisableUpdate: true},
		})
		if err != nil {
			return fmt.Errorf("creating scale set %q: %w", l.pool.ScaleSet.Name, err)
		}
		l.log.Info("scale set created", "id", set.Id, "runner_group", g.Name)
	}
	l.mu.Lock()
	l.set = set
	l.mu.Unlock()
	return nil
}

// openSession opens the set's message session. A 409 means a session
// exists: if its id is the one this manager kept (it crashed), it is
// deleted and the create retried at once.
func (l *listener) openSession(ctx context.Context) error {
	set := l.scaleSet()
	se, err := l.svc.CreateMessageSession(ctx, set.Id, l.o.Owner)
	if statusOf(err) == http.StatusConflict {
		stale, kerr := l.o.Store.GetKV(ctx, l.sessionKey(set.Id))
		id, perr := uuid.Parse(stale)
		if kerr != nil || perr != nil {
			return fmt.Errorf("creating session: %w", ErrSessionHeld)
		}
		l.log.Info("deleting the session a crash left", "session", id)
		if derr := l.svc.DeleteMessageSession(ctx, set.Id, &id); derr != nil && !errors.Is(derr, ErrSessionGone) {
			return fmt.Errorf("deleting stale session: %w", derr)
		}
		se, err = l.svc.CreateMessageSession(ctx, set.Id, l.o.Owner)
	}
	if err != nil {
		return fmt.Errorf("creating session: %w", err)
	}
	if se == nil || se.SessionId == nil || se.MessageQueueUrl == "" {
		return errors.New("creating session: answer without session")
	}
	if err := l.o.Store.PutKV(ctx, l.sessionKey(set.Id), se.SessionId.String()); err != nil {
		l.deleteSession(se)
		return err
	}
	l.mu.Lock()
	l.session = se
	l.mu.Unlock()
	l.log.Info("listening", "session", se.SessionId)
	return nil
}

// refresh renews the session's queue token; a session gone is reopened.
func (l *listener) refresh(ctx context.Context) error {
	set, se := l.scaleSet(), l.current()
	fresh, err := l.svc.RefreshMessageSession(ctx, set.Id, se.SessionId)
	if err != nil {
		if s := statusOf(err); s == http.StatusNotFound || s == http.StatusBadRequest {
			l.mu.Lock()
			l.session = nil
			l.mu.Unlock()
		}
		return fmt.Errorf("refreshing session: %w", err)
	}
	l.mu.Lock()
	l.session = fresh
	l.mu.Unlock()
	return nil
}

// poll waits for the next message, stores what it says and deletes it.
func (l *listener) poll(ctx context.Context, last *int64) error {
	se := l.current()
	m, err := l.svc.GetMessage(ctx, se.MessageQueueUrl, se.MessageQueueAccessToken, *last)
	if tokenExpired(err) {
		return l.refresh(ctx)
	}
	if err != nil {
		return fmt.Errorf("getting message: %w", err)
	}
	if m == nil {
		return nil // the long poll ended empty
	}
	if err := l.handle(ctx, m); err != nil {
		return fmt.Errorf("message %d: %w", m.MessageId, err)
	}
	err = l.svc.DeleteMessage(ctx, se.MessageQueueUrl, se.MessageQueueAccessToken, m.MessageId)
	if tokenExpired(err) {
		if rerr := l.refresh(ctx); rerr != nil {
			return rerr
		}
		se = l.current()
		err = l.svc.DeleteMessage(ctx, se.MessageQueueUrl, se.MessageQueueAccessToken, m.MessageId)
	}
	if err != nil {
		return fmt.Errorf("deleting message %d: %w", m.MessageId, err)
	}
	*last = m.MessageId
	return nil
}

// acquire asks GitHub to assign the request to the set, with the queue
// token of the open session.
func (l *listener) acquire(ctx context.Context, requestID int64) error {
	set, se := l.scaleSet(), l.current()
	if set == nil || se == nil {
		return fmt.Errorf("acquiring request %d: %w", requestID, ErrNoSession)
	}
	ids, err := l.svc.AcquireJobs(ctx, set.Id, se.MessageQueueAccessToken, []int64{requestID})
	if tokenExpired(err) {
		if err := l.refresh(ctx); err != nil {
			return err
		}
		se = l.current()
		ids, err = l.svc.AcquireJobs(ctx, set.Id, se.MessageQueueAccessToken, []int64{requestID})
	}
	if err != nil {
		return fmt.Errorf("acquiring request %d: %w", requestID, err)
	}
	if len(ids) == 0 {
		l.log.Info("job not acquired (cancelled or taken)", "request", requestID)
	}
	return nil
}

// close deletes the session on shutdown (bounded), and forgets its id.
func (l *listener) close() {
	se := l.current()
	if se == nil {
		return
	}
	l.deleteSession(se)
	l.mu.Lock()
	l.session = nil
	l.mu.Unlock()
}

func (l *listener) deleteSession(se *actions.RunnerScaleSetSession) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	set := l.scaleSet()
	if err := l.svc.DeleteMessageSession(ctx, set.Id, se.SessionId); err != nil && !errors.Is(err, ErrSessionGone) {
		l.log.Warn("deleting session", "session", se.SessionId, "err", err)
		return
	}
	if err := l.o.Store.PutKV(ctx, l.sessionKey(set.Id), ""); err != nil {
		l.log.Warn("forgetting session", "err", err)
	}
	l.log.Info("session deleted", "session", se.SessionId)
}
