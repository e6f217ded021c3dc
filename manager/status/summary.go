package status

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// tierSummary is the release-status view of one tier: are all its stable
// builders green on their latest verdict, which fail, which hosts are
// missing.
type tierSummary struct {
	Tier string `json:"tier"`
	// Green: the tier has stable builders and each passed its latest
	// build.
	Green    bool             `json:"green"`
	Stable   int              `json:"stable_builders"`
	Builders []summaryBuilder `json:"builders"`
	Failing  []string         `json:"failing"`
	Missing  []string         `json:"missing_hosts"`
}

type summaryBuilder struct {
	Pool      string    `json:"pool"`
	Stable    bool      `json:"stable"`
	Result    string    `json:"result"`
	RequestID string    `json:"request_id,omitempty"`
	JobURL    string    `json:"job_url,omitempty"`
	At        time.Time `json:"at,omitzero"`
}

// latestVerdicts is how many recent builds of a builder are looked at for
// its latest final result.
const latestVerdicts = 20

func (s *server) summaries(ctx context.Context) ([]tierSummary, error) {
	hosts, _, err := s.hostViews(ctx)
	if err != nil {
		s.log.Warn("listing hosts for the summary", "err", err)
		hosts = nil
	}
	var out []tierSummary
	index := map[string]int{}
	for _, p := range s.pools {
		i, ok := index[p.Tier]
		if !ok {
			i = len(out)
			index[p.Tier] = i
			out = append(out, tierSummary{Tier: p.Tier, Green: true, Builders: []summaryBuilder{}, Failing: []string{},
				Missing: []string{}})
		}
		bs, err := s.hist.PoolBuilds(ctx, p.Name, time.Time{}, latestVerdicts)
		if err != nil {
			return nil, err
		}
		sb := summaryBuilder{Pool: p.Name, Stable: p.Stable, Result: resultNone}
		for _, b := range bs {
			if res := resultOf(b); final(res) {
				sb.Result, sb.RequestID, sb.JobURL, sb.At = res, b.RequestID, b.HTMLURL, b.CreatedAt.UTC()
				break
			}
		}
		t := &out[i]
		t.Builders = append(t.Builders, sb)
		if p.Stable {
			t.Stable++
		}
		if p.Stable && sb.Result != resultSuccess {
			t.Green = false // no verdict yet is not green either
			if sb.Result == resultFailure || sb.Result == resultError {
				t.Failing = append(t.Failing, p.Name)
			}
		}
	}
	for i := range out {
		out[i].Green = out[i].Green && out[i].Stable > 0
	}
	for _, h := range hosts {
		if h.Health != "missing" && h.Health != "down" && h.Health != "disabled" {
			continue
		}
		for _, tier := range strings.Split(h.Tiers, ",") {
			if i, ok := index[strings.TrimSpace(tier)]; ok {
				out[i].Missing = append(out[i].Missing, h.Name)
			}
		}
	}
	return out, nil
}

func (s *server) summaryPage(w http.ResponseWriter, r *http.Request) {
	ts, err := s.summaries(r.Context())
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	s.render(w, http.StatusOK, "summary", map[string]any{"Title": "release status", "Refresh": true, "Tiers": ts})
}

func (s *server) apiSummary(w http.ResponseWriter, r *http.Request) {
	ts, err := s.summaries(r.Context())
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tiers": ts})
}
