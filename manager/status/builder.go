package status

import (
	"context"
	"net/http"
	"time"

	"github.com/buildfleet/buildfleet/manager/fleet"
	"github.com/buildfleet/buildfleet/manager/store"
)

// builderPageView is one builder's page: its pool, hosts, history and queue.
type builderPageView struct {
	Pool   poolView      `json:"pool"`
	Stats  builderStats  `json:"stats"`
	Builds []buildView   `json:"builds"`
	Queue  []waitingView `json:"queue"`
	Older  string        `json:"older,omitempty"`
}

// waitingView is one builder waiting for a host.
type waitingView struct {
	RequestID  string    `json:"request_id"`
	Repo       string    `json:"repo"`
	Pool       string    `json:"pool"`
	JobID      int64     `json:"job_id"`
	JobURL     string    `json:"job_url,omitempty"`
	State      string    `json:"state"`
	RunnerName string    `json:"runner_name,omitempty"`
	Reason     string    `json:"reason"`
	Since      time.Time `json:"since"`
	Age        string    `json:"age"`
}

func (s *server) queueViews(ctx context.Context, pool string) ([]waitingView, bool, error) {
	if s.queue == nil {
		return nil, false, nil
	}
	ws, err := s.queue.Queue(ctx)
	if err != nil {
		return nil, true, err
	}
	out := []waitingView{}
	for _, w := range ws {
		if pool != "" && w.Pool != pool {
			continue
		}
		out = append(out, waitingView{RequestID: w.RequestID, Repo: w.Repo, Pool: w.Pool, JobID: w.JobID, JobURL: w.JobURL,
			State: w.State, RunnerName: w.RunnerName, Reason: w.Reason, Since: w.Since.UTC(), Age: age(s.now().Sub(w.Since))})
	}
	return out, true, nil
}

func (s *server) builderData(r *http.Request) (builderPageView, error) {
	p, ok := s.pool(r.PathValue("name"))
	if !ok {
		return builderPageView{}, store.ErrNotFound
	}
	ctx := r.Context()
	v := builderPageView{Pool: poolView{Name: p.Name, Platform: p.Platform, Tier: p.Tier, Stable: p.Stable,
		MaxRunners: p.MaxRunners, Labels: p.Labels}}
	if s.fleet != nil {
		v.Pool.HostsAvailable = true
		hosts, err := s.fleet.Hosts(ctx, p)
		if err != nil {
			s.log.Warn("listing hosts", "pool", p.Name, "err", err)
			v.Pool.HostsError = "hosts could not be listed"
		}
		v.Pool.Hosts = hosts
	}
	bs, err := s.hist.PoolBuilds(ctx, p.Name, before(r.URL), pageSize)
	if err != nil {
		return v, err
	}
	v.Stats = statsOf(bs)
	v.Builds = make([]buildView, 0, len(bs))
	for _, b := range bs {
		v.Builds = append(v.Builds, s.buildView(b))
	}
	if len(bs) == pageSize {
		v.Older = olderLink(r.URL, bs[len(bs)-1].CreatedAt)
	}
	if v.Queue, _, err = s.queueViews(ctx, p.Name); err != nil {
		return v, err
	}
	return v, nil
}

func (s *server) builderPage(w http.ResponseWriter, r *http.Request) {
	v, err := s.builderData(r)
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	s.render(w, http.StatusOK, "builder", map[string]any{"Title": "builder " + v.Pool.Name, "Refresh": true, "B": v,
		"QueueKnown": s.queue != nil})
}

func (s *server) apiBuilder(w http.ResponseWriter, r *http.Request) {
	v, err := s.builderData(r)
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *server) queuePage(w http.ResponseWriter, r *http.Request) {
	q, known, err := s.queueViews(r.Context(), "")
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	s.render(w, http.StatusOK, "queue", map[string]any{"Title": "queue", "Refresh": true, "Queue": q, "QueueKnown": known})
}

func (s *server) apiQueue(w http.ResponseWriter, r *http.Request) {
	q, _, err := s.queueViews(r.Context(), "")
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	if q == nil {
		q = []waitingView{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"queue": q})
}

var _ Queue = (*fleet.Fleet)(nil)
