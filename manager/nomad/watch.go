package nomad

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
)

// State is a runner's lifecycle as Nomad sees it.
//
//	pending ──▶ blocked ──▶ placed ──▶ running ──▶ complete | failed
//	   │           │          │           └──────▶ lost (host gone)
//	   └───────────┴──────────┴──▶ stopped (StopRunner, purged)
//
// States only move forward along these arrows; complete, failed, lost and
// stopped are final.
type State string

// Runner states.
const (
	StatePending  State = "pending"  // dispatched, not evaluated yet
	StateBlocked  State = "blocked"  // no host matches or has room; Reason says why
	StatePlaced   State = "placed"   // an allocation on a host, not started
	StateRunning  State = "running"  // the runner process runs
	StateComplete State = "complete" // exited 0
	StateFailed   State = "failed"   // exited non-zero or could not start; Reason
	StateLost     State = "lost"     // its host disconnected or went down
	StateStopped  State = "stopped"  // stopped or purged before finishing
)

func (s State) rank() int {
	switch s {
	case StatePending:
		return 0
	case StateBlocked:
		return 1
	case StatePlaced:
		return 2
	case StateRunning:
		return 3
	}
	return 4
}

// Final reports whether no further change will follow.
func (s State) Final() bool { return s.rank() == 4 }

// Update is one runner's new state.
type Update struct {
	DispatchedJobID string
	RunnerName      string
	GitHubJobID     int64
	Attempt         int
	// Pool is the config pool name (the parent's buildfleet_pool meta).
	Pool    string
	State   State
	Reason  string
	AllocID string
	NodeID  string
	// Index is the Nomad Raft index the state was seen at; pass the highest
	// one handled to Watch after a restart.
	Index uint64
	// Reconnected marks the update sent, with no runner, after the watch
	// reconnected and resynced: Nomad may have restarted, and lost its
	// state (the pool jobs too), meanwhile.
	Reconnected bool
}

// Watch follows buildfleet's runners (children of jobs with the
// buildfleet_pool meta) until ctx ends, then closes the channel.
//
// On every (re)connect it first resyncs with List calls (children, their
// allocations, blocked evaluations) and emits each runner's current state,
// then follows the event stream (topics Allocation, Evaluation, Job, Node,
// named explicitly: a token without management rights gets 403 without
// them). An update is emitted only when a runner's state or reason changes,
// never backwards; after a restart, updates at or below fromIndex are not
// repeated. When the stream errors the subscription is cancelled (the api
// goroutine would otherwise keep looping) and redone with backoff.
func (c *Client) Watch(ctx context.Context, fromIndex uint64) <-chan Update {
	out := make(chan Update, 64)
	w := &watcher{c: c, out: out, from: fromIndex, runners: map[string]*tracked{}}
	go w.run(ctx)
	return out
}

// tracked is what the watcher knows of one child.
type tracked struct {
	u          Update // last emitted (State "" until first)
	allocIndex uint64 // ModifyIndex of the allocation last applied
	blockedWhy string // last placement failure seen before an allocation
}

type watcher struct {
	c       *Client
	out     chan<- Update
	from    uint64
	runners map[string]*tracked
	// notOurs remembers dispatched jobs that are not buildfleet's.
	notOurs map[string]bool
	// synced counts the resyncs done (see Update.Reconnected).
	synced int
}

// run is the watcher's one goroutine: resync → stream → (error) backoff →
// resync …
func (w *watcher) run(ctx context.Context) {
	defer close(w.out)
	backoff := 200 * time.Millisecond
	for {
		start, err := w.resync(ctx)
		if err == nil {
			backoff = 200 * time.Millisecond
			err = w.stream(ctx, start)
		}
		if ctx.Err() != nil {
			return
		}
		w.c.log().Warn("nomad watch interrupted, resyncing", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// resync lists the children, their allocations and blocked evaluations,
// emits each runner's current state once (at the highest index that shaped
// it), and returns the index to stream from.
func (w *watcher) resync(ctx context.Context) (uint64, error) {
	q := (&api.QueryOptions{Namespace: w.c.ns, Filter: `ParentID != ""`}).WithContext(ctx)
	jobs, meta, err := w.c.api.Jobs().ListOptions(&api.JobListOptions{Fields: &api.JobListFields{Meta: true}}, q)
	if err != nil {
		return 0, wrap("listing runner jobs", err)
	}
	start := meta.LastIndex

	aq := (&api.QueryOptions{Namespace: w.c.ns, Filter: `JobID contains "/dispatch-"`}).WithContext(ctx)
	allocs, _, err := w.c.api.Allocations().List(aq)
	if err != nil {
		return 0, wrap("listing runner allocations", err)
	}
	latest := map[string]*api.AllocationListStub{}
	for _, a := range allocs {
		if b := latest[a.JobID]; b == nil || a.CreateIndex > b.CreateIndex {
			latest[a.JobID] = a
		}
	}
	eq := (&api.QueryOptions{Namespace: w.c.ns, Filter: `Status == "blocked"`}).WithContext(ctx)
	evals, _, err := w.c.api.Evaluations().List(eq)
	if err != nil {
		return 0, wrap("listing blocked evaluations", err)
	}
	blocked := map[string]*api.Evaluation{}
	for _, e := range evals {
		blocked[e.JobID] = e
	}

	seen := map[string]bool{}
	for _, j := range jobs {
		if j.Meta[MetaPool] == "" {
			continue
		}
		seen[j.ID] = true
		t := w.track(j.ID, j.Meta)
		s, why, idx := StatePending, "", j.ModifyIndex
		if a := latest[j.ID]; a != nil {
			t.allocIndex = a.ModifyIndex
			t.u.AllocID, t.u.NodeID = a.ID, a.NodeID
			s, why = allocState(a.ClientStatus, a.DesiredStatus, a.NodeID, a.TaskStates)
			idx = max(idx, a.ModifyIndex)
		} else if e := blocked[j.ID]; e != nil && len(e.FailedTGAllocs) > 0 {
			s, why = StateBlocked, describeFailures(e.FailedTGAllocs)
			t.blockedWhy = why
			idx = max(idx, e.ModifyIndex)
		}
		if j.Stop && !s.Final() {
			s, why = StateStopped, "stopped"
		}
		if s != "" {
			w.emit(ctx, t, s, why, idx)
		}
	}
	// Purged while we were away: stopped, unless already final.
	for id, t := range w.runners {
		if !seen[id] {
			w.emit(ctx, t, StateStopped, "purged", start)
		}
	}
	if w.synced++; w.synced > 1 {
		select {
		case w.out <- Update{Reconnected: true}:
		case <-ctx.Done():
		}
	}
	return start, nil
}

// stream follows the event stream from index until it errors or ctx ends.
func (w *watcher) stream(ctx context.Context, index uint64) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the api's goroutine, which loops after errors
	topics := map[api.Topic][]string{
		api.TopicAllocation: {"*"},
		api.TopicEvaluation: {"*"},
		api.TopicJob:        {"*"},
		api.TopicNode:       {"*"},
	}
	q := &api.QueryOptions{Namespace: w.c.ns}
	ch, err := w.c.api.EventStream().Stream(sctx, topics, index, q)
	if err != nil {
		return wrap("subscribing to nomad events", err)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case evs, ok := <-ch:
			if !ok {
				return fmt.Errorf("nomad event stream closed")
			}
			if evs.Err != nil {
				return fmt.Errorf("nomad event stream: %w", evs.Err)
			}
			if evs.IsHeartbeat() {
				continue
			}
			for i := range evs.Events {
				w.handle(ctx, &evs.Events[i])
			}
		}
	}
}

func (w *watcher) handle(ctx context.Context, e *api.Event) {
	switch e.Topic {
	case api.TopicJob:
		j, err := decodeJob(e)
		if err != nil {
			w.c.log().Warn("undecodable job event", "key", e.Key, "err", err)
			return
		}
		if j.ParentID == nil || *j.ParentID == "" || j.Meta[MetaPool] == "" || j.ID == nil {
			return
		}
		t := w.track(*j.ID, j.Meta)
		switch {
		case e.Type == "JobDeregistered" || (j.Stop != nil && *j.Stop):
			w.emit(ctx, t, StateStopped, "stopped", e.Index)
		default:
			w.emit(ctx, t, StatePending, "", e.Index)
		}
	case api.TopicEvaluation:
		ev, err := e.Evaluation()
		if err != nil || ev == nil {
			return
		}
		if t := w.lookup(ctx, ev.JobID); t != nil {
			w.applyEval(ctx, t, ev)
		}
	case api.TopicAllocation:
		a, err := e.Allocation()
		if err != nil || a == nil {
			return
		}
		if t := w.lookup(ctx, a.JobID); t != nil {
			w.applyAlloc(ctx, t, a.ID, a.NodeID, a.ClientStatus, a.DesiredStatus, a.TaskStates, a.ModifyIndex)
		}
	case api.TopicNode:
		// Allocations on a host that disconnects or goes down change too and
		// reach us on the Allocation topic; the Node topic is subscribed so
		// consumers of the index see node changes advance it, and for
		// undrained hosts (see wakeBlocked).
		if e.Type != "NodeDrain" {
			return
		}
		if n, err := e.Node(); err == nil && n != nil && n.DrainStrategy == nil &&
			n.SchedulingEligibility == api.NodeSchedulingEligible && n.Status == api.NodeStatusReady {
			w.wakeBlocked(ctx, n.Name)
		}
	}
}

// decodeJob decodes a Job event's job. api's Event.Job() fails on any job
// with a payload (mapstructure has no base64 hook), so go through JSON.
func decodeJob(e *api.Event) (*api.Job, error) {
	raw, ok := e.Payload["Job"]
	if !ok {
		return nil, fmt.Errorf("no Job in payload")
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var j api.Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

func (w *watcher) track(id string, meta map[string]string) *tracked {
	if t := w.runners[id]; t != nil {
		return t
	}
	gh, _ := strconv.ParseInt(meta[MetaGitHubJobID], 10, 64)
	att, _ := strconv.Atoi(meta[MetaAttempt])
	t := &tracked{u: Update{
		DispatchedJobID: id,
		RunnerName:      meta[MetaRunnerName],
		GitHubJobID:     gh,
		Attempt:         att,
		Pool:            meta[MetaPool],
	}}
	w.runners[id] = t
	return t
}

// lookup finds a tracked child, reading an unknown dispatched job once
// (an event for it may come before its Job event after a reconnect).
func (w *watcher) lookup(ctx context.Context, jobID string) *tracked {
	if t := w.runners[jobID]; t != nil {
		return t
	}
	if !strings.Contains(jobID, api.JobDispatchLaunchSuffix) || w.notOurs[jobID] {
		return nil
	}
	q := (&api.QueryOptions{Namespace: w.c.ns}).WithContext(ctx)
	j, _, err := w.c.api.Jobs().Info(jobID, q)
	if err != nil || j.Meta[MetaPool] == "" {
		if w.notOurs == nil {
			w.notOurs = map[string]bool{}
		}
		w.notOurs[jobID] = true
		return nil
	}
	return w.track(jobID, j.Meta)
}

func (w *watcher) applyEval(ctx context.Context, t *tracked, e *api.Evaluation) {
	if len(e.FailedTGAllocs) == 0 {
		return
	}
	why := describeFailures(e.FailedTGAllocs)
	t.blockedWhy = why
	if t.allocIndex == 0 {
		w.emit(ctx, t, StateBlocked, why, e.ModifyIndex)
	}
}

func (w *watcher) applyAlloc(ctx context.Context, t *tracked, id, node, client, desired string,
	tasks map[string]*api.TaskState, index uint64) {
	if index < t.allocIndex {
		return
	}
	t.allocIndex = index
	t.u.AllocID, t.u.NodeID = id, node
	if s, why := allocState(client, desired, node, tasks); s != "" {
		w.emit(ctx, t, s, why, index)
	}
}

// allocState maps an allocation's statuses to a runner state ("" for a
// status this version does not know).
func allocState(client, desired, node string, tasks map[string]*api.TaskState) (State, string) {
	switch client {
	case api.AllocClientStatusPending:
		return StatePlaced, ""
	case api.AllocClientStatusRunning:
		return StateRunning, ""
	case api.AllocClientStatusComplete:
		if desired != api.AllocDesiredStatusRun {
			return StateStopped, "stopped"
		}
		return StateComplete, ""
	case api.AllocClientStatusFailed:
		return StateFailed, taskFailure(tasks)
	case api.AllocClientStatusLost, api.AllocClientStatusUnknown:
		return StateLost, "host " + shortID(node) + " disconnected or went down"
	}
	return "", ""
}

// taskFailure is the last task event that explains a failure.
func taskFailure(tasks map[string]*api.TaskState) string {
	for name, ts := range tasks {
		if ts == nil {
			continue
		}
		// Newest first; "Not Restarting" only says the restart policy is 0.
		for i := len(ts.Events) - 1; i >= 0; i-- {
			ev := ts.Events[i]
			if ev.Type == api.TaskNotRestarting {
				continue
			}
			if ev.FailsTask || ev.Type == api.TaskTerminated || ev.Type == api.TaskDriverFailure {
				msg := ev.DisplayMessage
				if msg == "" {
					msg = ev.Type
				}
				return fmt.Sprintf("task %s: %s", name, msg)
			}
		}
	}
	return "allocation failed"
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// emit sends t's new state if it moves forward (or the reason changes) and
// is newer than the watcher's starting index.
func (w *watcher) emit(ctx context.Context, t *tracked, s State, reason string, index uint64) {
	old := t.u.State
	if old != "" {
		if old.Final() || s.rank() < old.rank() || (s == old && reason == t.u.Reason) {
			return
		}
	}
	t.u.State, t.u.Reason, t.u.Index = s, reason, index
	if index <= w.from && old == "" {
		return // the consumer saw it before its restart
	}
	select {
	case w.out <- t.u:
	case <-ctx.Done():
	}
}
