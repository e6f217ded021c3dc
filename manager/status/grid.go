package status

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/store"
)

// gridView is buildbot's grid: one row per builder (pool), one column per
// recent request, each cell the builder's result for that request.
type gridView struct {
	Tier string `json:"tier,omitempty"`
	// Stability filters the rows: "", "stable" or "unstable".
	Stability string       `json:"stability,omitempty"`
	Tiers     []string     `json:"-"`
	Columns   []gridColumn `json:"columns"`
	Rows      []gridRow    `json:"rows"`
	Older     string       `json:"older,omitempty"`
}

type gridColumn struct {
	ID       string    `json:"id"`
	Repo     string    `json:"repo"`
	PR       int       `json:"pr"`
	PRURL    string    `json:"pr_url,omitempty"`
	SHA      string    `json:"sha"`
	ShortSHA string    `json:"-"`
	Tier     string    `json:"tier"`
	Actor    string    `json:"actor"`
	State    string    `json:"state"`
	Created  time.Time `json:"created_at"`
	Age      string    `json:"-"`
}

type gridRow struct {
	Pool     string     `json:"pool"`
	Platform string     `json:"platform"`
	Tier     string     `json:"tier"`
	Stable   bool       `json:"stable"`
	Cells    []gridCell `json:"cells"`
}

// gridCell is one builder's result for one request. URL is the job's log
// when there is one, else the request's page.
type gridCell struct {
	Result string `json:"result"`
	URL    string `json:"url,omitempty"`
	Title  string `json:"title,omitempty"`
}

func (s *server) gridData(r *http.Request) (gridView, error) {
	q := r.URL.Query()
	v := gridView{Tier: q.Get("tier"), Stability: q.Get("stable")}
	seen := map[string]bool{}
	for _, p := range s.pools {
		if !seen[p.Tier] {
			seen[p.Tier] = true
			v.Tiers = append(v.Tiers, p.Tier)
		}
	}
	if v.Tier != "" && !seen[v.Tier] {
		v.Tier = "" // an unknown tier filters nothing rather than everything
	}
	if v.Stability != "stable" && v.Stability != "unstable" {
		v.Stability = ""
	}
	reqs, err := s.hist.RequestsPage(r.Context(), before(r.URL), gridColumns, v.Tier, true)
	if err != nil {
		return v, err
	}
	cells, err := s.cells(r.Context(), reqs)
	if err != nil {
		return v, err
	}
	v.Columns = make([]gridColumn, 0, len(reqs))
	for _, q := range reqs {
		v.Columns = append(v.Columns, gridColumn{ID: q.ID, Repo: q.Repo, PR: q.PR, PRURL: s.prURL(q.Repo, q.PR), SHA: q.SHA,
			ShortSHA: short(q.SHA), Tier: q.Tier, Actor: q.Actor, State: string(q.State), Created: q.CreatedAt.UTC(),
			Age: age(s.now().Sub(q.CreatedAt))})
	}
	v.Rows = []gridRow{}
	for _, p := range s.pools {
		if v.Tier != "" && p.Tier != v.Tier || v.Stability == "stable" && !p.Stable || v.Stability == "unstable" && p.Stable {
			continue
		}
		row := gridRow{Pool: p.Name, Platform: p.Platform, Tier: p.Tier, Stable: p.Stable, Cells: make([]gridCell, 0, len(reqs))}
		for _, q := range reqs {
			row.Cells = append(row.Cells, s.cell(q, p, cells[q.ID][p.Name]))
		}
		v.Rows = append(v.Rows, row)
	}
	if len(reqs) == gridColumns {
		v.Older = olderLink(r.URL, reqs[len(reqs)-1].CreatedAt)
	}
	return v, nil
}

// gridColumns is how many requests a grid page shows.
const gridColumns = 20

// cells loads the latest attempt of every builder of the requests, in one
// query.
func (s *server) cells(ctx context.Context, reqs []store.Request) (map[string]map[string]*store.Build, error) {
	ids := make([]string, len(reqs))
	for i, q := range reqs {
		ids[i] = q.ID
	}
	bs, err := s.hist.BuildsOfRequests(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]*store.Build{}
	for i := range bs {
		b := &bs[i]
		if out[b.RequestID] == nil {
			out[b.RequestID] = map[string]*store.Build{}
		}
		out[b.RequestID][b.Pool] = b
	}
	return out, nil
}

func (s *server) cell(q store.Request, p config.Pool, b *store.Build) gridCell {
	reqURL := "/requests/" + q.ID
	if b == nil {
		if builds(q, p.Name) {
			return gridCell{Result: resultWaiting, URL: reqURL, Title: p.Name + ": waiting for a runner"}
		}
		return gridCell{Result: resultNone}
	}
	c := gridCell{Result: resultOf(*b), URL: reqURL, Title: p.Name + ": " + resultOf(*b)}
	if b.HTMLURL != "" {
		c.URL = b.HTMLURL
	}
	if b.Times.NodeName != "" {
		c.Title += " on " + b.Times.NodeName
	}
	return c
}

// builds tells whether a request's builders input names the pool.
func builds(q store.Request, pool string) bool {
	var bs []struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal([]byte(q.Builders), &bs)
	for _, b := range bs {
		if b.Name == pool {
			return true
		}
	}
	return false
}

func (s *server) gridPage(w http.ResponseWriter, r *http.Request) {
	v, err := s.gridData(r)
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	s.render(w, http.StatusOK, "grid", map[string]any{"Title": "grid", "Refresh": true, "G": v})
}

func (s *server) apiGrid(w http.ResponseWriter, r *http.Request) {
	v, err := s.gridData(r)
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
