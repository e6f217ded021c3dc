package notify

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/buildfleet/buildfleet/manager/store"
)

// Store keys of what must survive a restart, per host name.
const (
	kvDisabled = "notify.disabled/" // when buildfleet made the host ineligible
	kvReset    = "notify.reset/"    // failures before this time no longer count
	kvMissing  = "notify.missing/"  // the missing notice of this episode was stored
)

// Poll looks at the nodes once: who is ready, who is missing and since
// when, who was re-enabled by its owner; and stores the missing notices
// that are due.
func (t *Tracker) Poll(ctx context.Context) {
	if err := t.poll(ctx); err != nil {
		t.log.Warn("listing nodes for host health", "err", err)
	}
}

func (t *Tracker) poll(ctx context.Context) error {
	nodes, err := t.o.Nodes.Nodes(ctx)
	if err != nil {
		return err
	}
	now := t.o.Now()
	t.mu.Lock()
	seen := map[string]bool{}
	for _, n := range nodes {
		seen[n.Name] = true
		hs := t.hosts[n.Name]
		if hs == nil {
			hs = &hostState{}
			t.hosts[n.Name] = hs
		}
		hs.node, hs.gone = n, false
		if n.Status == "ready" {
			hs.lastSeen, hs.missingSince = now, time.Time{}
		} else if hs.missingSince.IsZero() {
			hs.missingSince = now
			if !n.StatusUpdatedAt.IsZero() && n.StatusUpdatedAt.Before(now) {
				hs.missingSince = n.StatusUpdatedAt // down before this manager looked
			}
		}
	}
	for name, hs := range t.hosts {
		if !seen[name] && !hs.gone {
			hs.gone = true
			if hs.missingSince.IsZero() {
				hs.missingSince = now
			}
		}
	}
	snapshot := make([]hostState, 0, len(t.hosts))
	for _, hs := range t.hosts {
		snapshot = append(snapshot, *hs)
	}
	t.polled = now
	t.mu.Unlock()

	for _, hs := range snapshot {
		t.settle(ctx, hs, now)
	}
	return nil
}

// settle acts on one host after a look: a re-enabled host counts afresh,
// a host back clears its missing episode, a host missing for too long
// gets its notice.
func (t *Tracker) settle(ctx context.Context, hs hostState, now time.Time) {
	name := hs.node.Name
	if disabled, _ := t.st.GetKV(ctx, kvDisabled+name); disabled != "" && hs.node.Eligible && !hs.gone {
		t.log.Info("host re-enabled by its owner", "host", name)
		_ = t.st.DeleteKV(ctx, kvDisabled+name)
		_ = t.st.PutKV(ctx, kvReset+name, strconv.FormatInt(now.UnixNano(), 10))
	}
	episode, _ := t.st.GetKV(ctx, kvMissing+name)
	if hs.missingSince.IsZero() {
		if episode != "" {
			t.log.Info("host back", "host", name)
			_ = t.st.DeleteKV(ctx, kvMissing+name)
		}
		return
	}
	if episode != "" || now.Sub(hs.missingSince) < t.o.Config.MissingAfter.D() || inDowntime(hs.node.Meta, now) ||
		paused(hs) {
		return
	}
	state := hs.node.Status
	if hs.gone {
		state = "gone from the cluster"
	}
	t.log.Warn("host missing", "host", name, "since", hs.missingSince, "status", state)
	subject := fmt.Sprintf("buildfleet: your host %s is missing", name)
	body := fmt.Sprintf("Hello %s,\n\nyour host %s, which you lend to buildfleet, has not been ready since %s (%s).\n"+
		"No builds are placed on it meanwhile. Please check the Nomad client on it; nothing else is needed, it is used again as soon as it is back.\n"+
		"If you plan downtime, set the node meta %s to \"start/end\" (RFC 3339) and no notice is sent.\n",
		ownerName(hs.node.Meta), name, hs.missingSince.UTC().Format(time.RFC3339), state, MetaDowntime)
	if err := t.enqueue(ctx, name, hs.node.Meta, NoticeMissing, subject, body, now); err != nil {
		t.log.Error("storing a missing notice", "host", name, "err", err)
		return
	}
	_ = t.st.PutKV(ctx, kvMissing+name, strconv.FormatInt(now.UnixNano(), 10))
}

// paused tells a host its owner paused (ineligible or draining, not by
// buildfleet): it may be switched off without alarm.
func paused(hs hostState) bool {
	return !hs.gone && (!hs.node.Eligible || hs.node.Draining)
}

// RecordSuccess says a runner on host took and finished its job: the
// failures before it are no longer "in a row".
func (t *Tracker) RecordSuccess(ctx context.Context, host string) {
	if host == "" {
		return
	}
	if err := t.st.PutKV(ctx, kvReset+host, strconv.FormatInt(t.o.Now().UnixNano(), 10)); err != nil {
		t.log.Warn("recording a success", "host", host, "err", err)
	}
}

// RecordFailure records an infrastructure failure of a runner on host
// and, at the max_failures-th in a row within the window, takes the host
// out of scheduling and tells its owner. A host in planned downtime, or
// paused by its owner, or already taken out, is left as it is.
func (t *Tracker) RecordFailure(ctx context.Context, host, runner, kind, detail string) {
	if host == "" {
		return
	}
	now := t.o.Now()
	t.m.failures.WithLabelValues(kind).Inc()
	if err := t.st.AddHostFailure(ctx, store.HostFailure{Host: host, RunnerName: runner, Kind: kind, Detail: detail, At: now}); err != nil {
		t.log.Error("recording a host failure", "host", host, "err", err)
		return
	}
	hs, ok := t.host(ctx, host)
	if !ok || inDowntime(hs.node.Meta, now) || !hs.node.Eligible {
		return
	}
	if v, _ := t.st.GetKV(ctx, kvDisabled+host); v != "" {
		return
	}
	since := now.Add(-t.o.Config.FailureWindow.D())
	if v, _ := t.st.GetKV(ctx, kvReset+host); v != "" {
		// Failures at the reset itself came before it.
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && !time.Unix(0, n).Before(since) {
			since = time.Unix(0, n+1)
		}
	}
	fs, err := t.st.HostFailures(ctx, host, since, t.o.Config.MaxFailures)
	if err != nil || len(fs) < t.o.Config.MaxFailures {
		return
	}
	if err := t.o.Nodes.SetEligibility(ctx, hs.node.ID, false); err != nil {
		t.log.Error("taking a failing host out of scheduling", "host", host, "err", err)
		return
	}
	_ = t.st.PutKV(ctx, kvDisabled+host, strconv.FormatInt(now.UnixNano(), 10))
	t.m.disabled.Inc()
	t.log.Warn("host taken out of scheduling", "host", host, "failures", len(fs))
	var lines []string
	for i := len(fs) - 1; i >= 0; i-- {
		f := fs[i]
		lines = append(lines, fmt.Sprintf("- %s %s: %s %s", f.At.UTC().Format(time.RFC3339), f.RunnerName, f.Kind, f.Detail))
	}
	subject := fmt.Sprintf("buildfleet: your host %s was taken out of scheduling", host)
	body := fmt.Sprintf("Hello %s,\n\nbuildfleet's runners failed %d times in a row on your host %s, which you lend to buildfleet:\n\n%s\n\n"+
		"So that builds stop failing there, no new build is placed on it (Nomad scheduling eligibility off); running builds go on.\n"+
		"Once the host is fixed, re-enable it with:\n\n    nomad node eligibility -enable %s\n",
		ownerName(hs.node.Meta), len(fs), host, strings.Join(lines, "\n"), hs.node.ID)
	if err := t.enqueue(ctx, host, hs.node.Meta, NoticeIneligible, subject, body, now); err != nil {
		t.log.Error("storing an ineligible notice", "host", host, "err", err)
	}
	t.wakeUp()
}

// host returns what the last look knew of a host, looking now if it is
// not known yet.
func (t *Tracker) host(ctx context.Context, name string) (hostState, bool) {
	t.mu.Lock()
	hs, ok := t.hosts[name]
	t.mu.Unlock()
	if !ok {
		t.Poll(ctx)
		t.mu.Lock()
		hs, ok = t.hosts[name]
		t.mu.Unlock()
	}
	if !ok {
		return hostState{}, false
	}
	return *hs, true
}

func ownerName(meta map[string]string) string {
	if o := strings.TrimSpace(meta[MetaOwner]); o != "" {
		return o
	}
	return "donor"
}

// inDowntime tells whether now is within the host's planned downtime.
func inDowntime(meta map[string]string, now time.Time) bool {
	from, to, err := Downtime(meta[MetaDowntime])
	return err == nil && !from.IsZero() && !now.Before(from) && now.Before(to)
}

// Downtime parses a planned downtime "start/end" (RFC 3339); empty is no
// downtime.
func Downtime(v string) (from, to time.Time, err error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, time.Time{}, nil
	}
	a, b, ok := strings.Cut(v, "/")
	if !ok {
		return time.Time{}, time.Time{}, fmt.Errorf("downtime %q: want start/end", v)
	}
	if from, err = time.Parse(time.RFC3339, strings.TrimSpace(a)); err == nil {
		to, err = time.Parse(time.RFC3339, strings.TrimSpace(b))
	}
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("downtime %q: %w", v, err)
	}
	if !to.After(from) {
		return time.Time{}, time.Time{}, errors.New("downtime ends before it starts")
	}
	return from, to, nil
}

// Host is one host as the hosts page shows it.
type Host struct {
	ID, Name, Datacenter, NodePool string
	Platform, Tiers, Isolation     string
	Owner, Contact                 string
	Status                         string
	Eligible, Draining             bool
	// DisabledByFleet: buildfleet took it out of scheduling; the owner
	// re-enables it.
	DisabledByFleet bool
	Downtime        string
	InDowntime      bool
	Slots, Used     int
	LastSeen        time.Time
	MissingSince    time.Time
	// Health sums it up: ready, missing, down, drained, paused,
	// disabled, downtime.
	Health   string
	Failures []store.HostFailure
	Notices  []store.Notice
}

// Hosts lists every host known, with its recent failures (within the
// failure window) and notices.
func (t *Tracker) Hosts(ctx context.Context) ([]Host, error) {
	t.mu.Lock()
	polled := t.polled
	t.mu.Unlock()
	if polled.IsZero() {
		if err := t.poll(ctx); err != nil {
			return nil, err // never seen the nodes: nothing to show
		}
	}
	now := t.o.Now()
	t.mu.Lock()
	list := make([]hostState, 0, len(t.hosts))
	for _, hs := range t.hosts {
		list = append(list, *hs)
	}
	t.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].node.Name < list[j].node.Name })
	out := make([]Host, 0, len(list))
	for _, hs := range list {
		n := hs.node
		h := Host{ID: n.ID, Name: n.Name, Datacenter: n.Datacenter, NodePool: n.NodePool, Platform: n.Meta[MetaPlatform],
			Tiers: n.Meta[MetaTiers], Isolation: n.Meta[MetaIsolation], Owner: n.Meta[MetaOwner], Contact: n.Meta[MetaContact],
			Status: n.Status, Eligible: n.Eligible, Draining: n.Draining, Downtime: n.Meta[MetaDowntime],
			InDowntime: inDowntime(n.Meta, now), Slots: n.Slots, Used: n.Used, LastSeen: hs.lastSeen, MissingSince: hs.missingSince}
		if h.Platform == "" && n.Kernel != "" {
			h.Platform = n.Kernel + "-" + n.Arch
		}
		if hs.gone {
			h.Status = "gone"
		}
		if v, _ := t.st.GetKV(ctx, kvDisabled+n.Name); v != "" {
			h.DisabledByFleet = true
		}
		h.Health = health(h, now, t.o.Config.MissingAfter.D())
		var err error
		if h.Failures, err = t.st.HostFailures(ctx, n.Name, now.Add(-t.o.Config.FailureWindow.D()), 10); err != nil {
			return nil, err
		}
		if h.Notices, err = t.st.HostNotices(ctx, n.Name, 10); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

func health(h Host, now time.Time, missingAfter time.Duration) string {
	switch {
	case h.InDowntime && h.Status != "ready":
		return "downtime"
	case h.Status != "ready" && (h.Draining || !h.Eligible && !h.DisabledByFleet):
		return "down" // paused by its owner first: no alarm
	case h.Status != "ready" && !h.MissingSince.IsZero() && now.Sub(h.MissingSince) >= missingAfter:
		return "missing"
	case h.Status != "ready":
		return "down"
	case h.DisabledByFleet:
		return "disabled"
	case h.Draining:
		return "drained"
	case !h.Eligible:
		return "paused"
	}
	return "ready"
}
