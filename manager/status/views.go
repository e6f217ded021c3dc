package status

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/buildfleet/buildfleet/manager/fleet"
	"github.com/buildfleet/buildfleet/manager/store"
)

// requestView is what the pages and the API show of a request. Fields are
// copied one by one from store.Request: nothing reaches a page unless it
// is named here.
type requestView struct {
	ID           string        `json:"id"`
	Repo         string        `json:"repo"`
	PR           int           `json:"pr"`
	PRURL        string        `json:"pr_url"`
	SHA          string        `json:"sha"`
	ShortSHA     string        `json:"-"`
	Tier         string        `json:"tier"`
	Label        string        `json:"label"`
	Actor        string        `json:"actor"`
	Role         string        `json:"role"`
	State        string        `json:"state"`
	Reason       string        `json:"reason"`
	LabelRemoved bool          `json:"label_removed"`
	CommentURL   string        `json:"comment_url,omitempty"`
	RunID        int64         `json:"run_id,omitempty"`
	RunURL       string        `json:"run_url,omitempty"`
	SupersededBy string        `json:"superseded_by,omitempty"`
	CreatedAt    time.Time     `json:"created_at"`
	UpdatedAt    time.Time     `json:"updated_at"`
	Age          string        `json:"-"`
	Builders     []builderView `json:"builders"`
	// Runners lists every runner attempt, oldest first; null when the
	// store does not record runners.
	Runners []runnerView `json:"runners"`
	// Timeline is each builder's latest attempt with its moments: queued,
	// placed, runner started, job started, finished.
	Timeline []buildView `json:"timeline"`
}

// builderView is one entry of the builders input, with its runners.
type builderView struct {
	Name    string       `json:"name"`
	Labels  []string     `json:"labels"`
	Runners []runnerView `json:"-"`
}

// runnerView is one runner attempt. The JIT config is not in the store,
// and nothing else of a runner is secret.
type runnerView struct {
	Pool       string    `json:"pool"`
	JobID      int64     `json:"job_id"`
	Attempt    int       `json:"attempt"`
	RunnerName string    `json:"runner_name"`
	NomadJobID string    `json:"nomad_job_id,omitempty"`
	JobURL     string    `json:"job_url,omitempty"`
	State      string    `json:"state"`
	Conclusion string    `json:"conclusion,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// poolView is one configured pool with its current runners and hosts.
type poolView struct {
	Name       string   `json:"name"`
	Platform   string   `json:"platform"`
	Tier       string   `json:"tier"`
	Stable     bool     `json:"stable"`
	MaxRunners int      `json:"max_runners"`
	Labels     []string `json:"labels"`
	// Runner is the runner program and version the pool's hosts run.
	Runner string `json:"runner"`
	// Pending and Running are nil when the store has no runners.
	Pending *int `json:"pending,omitempty"`
	Running *int `json:"running,omitempty"`
	// HostsKnown is false when no Fleet is known (Hosts nil).
	HostsKnown bool `json:"hosts_known"`
	// HostsAvailable is true when Nomad could place the pool's runner on
	// one of Hosts now.
	HostsAvailable bool   `json:"hosts_available"`
	HostsError     string `json:"hosts_error,omitempty"`
	Hosts          []Host `json:"hosts,omitempty"`
}

func (s *server) requestView(r store.Request) requestView {
	v := requestView{
		ID: r.ID, Repo: r.Repo, PR: r.PR, SHA: r.SHA, ShortSHA: r.SHA, Tier: r.Tier, Label: r.Label,
		Actor: r.Actor, Role: r.Role, State: string(r.State), Reason: r.Reason, LabelRemoved: r.LabelRemoved,
		RunID: r.RunID, RunURL: r.RunURL, SupersededBy: r.SupersededBy,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), Age: age(s.now().Sub(r.CreatedAt)),
		Builders: []builderView{},
	}
	if len(v.ShortSHA) > 10 {
		v.ShortSHA = v.ShortSHA[:10]
	}
	if v.PRURL = s.prURL(r.Repo, r.PR); v.PRURL != "" {
		if r.CommentID != 0 {
			v.CommentURL = v.PRURL + "#issuecomment-" + strconv.FormatInt(r.CommentID, 10)
		}
	}
	if r.Builders != "" {
		if err := json.Unmarshal([]byte(r.Builders), &v.Builders); err != nil {
			s.log.Warn("request builders are not JSON", "request", r.ID, "err", err)
			v.Builders = []builderView{}
		}
	}
	return v
}

// prURL links a PR on GitHub ("" without one).
func (s *server) prURL(repo string, pr int) string {
	if repo == "" || pr <= 0 {
		return ""
	}
	return strings.TrimSuffix(s.webURL, "/") + "/" + repo + "/pull/" + strconv.Itoa(pr)
}

// timeline keeps the latest attempt of each builder, in the order the
// builders were first seen.
func (s *server) timeline(bs []store.Build) []buildView {
	out := []buildView{}
	at := map[string]int{}
	for _, b := range bs {
		v := s.buildView(b)
		if i, ok := at[b.Pool]; ok {
			if b.Attempt >= out[i].Attempt {
				out[i] = v
			}
			continue
		}
		at[b.Pool] = len(out)
		out = append(out, v)
	}
	return out
}

// attachRunners adds the runner rows, and to each builder those of its pool
// (builders are named after their pool).
func (v *requestView) attachRunners(rs []store.Runner) {
	v.Runners = make([]runnerView, 0, len(rs))
	for _, r := range rs {
		rv := runnerView{
			Pool: r.Pool, JobID: r.GitHubJobID, Attempt: r.Attempt, RunnerName: r.RunnerName,
			NomadJobID: r.NomadJobID, JobURL: r.HTMLURL, State: r.State, Conclusion: r.Conclusion,
			UpdatedAt: r.UpdatedAt.UTC(),
		}
		v.Runners = append(v.Runners, rv)
		for i := range v.Builders {
			if v.Builders[i].Name == r.Pool {
				v.Builders[i].Runners = append(v.Builders[i].Runners, rv)
			}
		}
	}
}

// poolViews lists the configured pools with runner counts and hosts when
// those are known. A failing Fleet is shown on the pool, not as a 500.
func (s *server) poolViews(ctx context.Context, withHosts bool) ([]poolView, error) {
	out := make([]poolView, 0, len(s.pools))
	for _, p := range s.pools {
		v := poolView{Name: p.Name, Platform: p.Platform, Tier: p.Tier, Stable: p.Stable,
			MaxRunners: p.MaxRunners, Labels: p.Labels, Runner: s.runnerOf(p.Runner)}
		if s.runners != nil {
			pending, err := s.runners.ActiveRunners(ctx, p.Name, fleet.StateStarting, fleet.StateDispatched)
			if err != nil {
				return nil, err
			}
			running, err := s.runners.ActiveRunners(ctx, p.Name, fleet.StateRunning)
			if err != nil {
				return nil, err
			}
			v.Pending, v.Running = &pending, &running
		}
		if withHosts && s.fleet != nil {
			v.HostsKnown = true
			hosts, err := s.fleet.Hosts(ctx, p)
			if err != nil {
				s.log.Warn("listing hosts", "pool", p.Name, "err", err)
				v.HostsError = "hosts could not be listed"
			}
			v.Hosts = hosts
			for _, h := range hosts {
				v.HostsAvailable = v.HostsAvailable || h.Placeable
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// age is a short human duration: 45s, 12m, 3h, 2d.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}
