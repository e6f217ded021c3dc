package ghsim

import (
	"encoding/json"
	"sort"
	"time"
)

// DeliveryRecord is one webhook delivery attempt, for tests and the control API.
type DeliveryRecord struct {
	HookID      int64           `json:"hook_id"`
	ID          int64           `json:"id"`
	GUID        string          `json:"guid"`
	Event       string          `json:"event"`
	Action      string          `json:"action,omitempty"`
	StatusCode  int             `json:"status_code"`
	Status      string          `json:"status"`
	Duration    time.Duration   `json:"duration_ns"`
	Redelivery  bool            `json:"redelivery"`
	Dropped     bool            `json:"dropped"`
	DeliveredAt time.Time       `json:"delivered_at"`
	Payload     json.RawMessage `json:"payload"`
}

// Calls returns the REST calls received so far, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Deliveries returns every recorded delivery attempt of every hook, in the
// order they finished.
func (s *Server) Deliveries() []DeliveryRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []DeliveryRecord
	for _, h := range s.st.hooks {
		for _, d := range h.Deliv {
			out = append(out, DeliveryRecord{
				HookID: h.ID, ID: d.ID, GUID: d.GUID, Event: d.Event, Action: d.Action,
				StatusCode: d.StatusCode, Status: d.Status, Duration: d.Duration, Redelivery: d.Redelivery,
				Dropped: d.Dropped, DeliveredAt: d.DeliveredAt, Payload: d.Body,
			})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].DeliveredAt.Before(out[j].DeliveredAt) })
	return out
}

// commitView lists what was reported on a commit: statuses and check runs.
func (s *Server) commitView(rp *repo, sha string) obj {
	st := []any{}
	for _, x := range statusesFor(rp, sha) {
		st = append(st, s.statusJSON(rp, x))
	}
	var crs []*checkRun
	for _, c := range s.st.checkRuns {
		if c.Repo == rp && c.HeadSHA == sha {
			crs = append(crs, c)
		}
	}
	sortByID(crs, func(c *checkRun) int64 { return c.ID })
	cr := []any{}
	for _, c := range crs {
		cr = append(cr, s.checkRunJSON(c))
	}
	return obj{"sha": sha, "statuses": st, "check_runs": cr}
}

// runsView lists a repository's runs, each with its jobs.
func (s *Server) runsView(rp *repo) []any {
	var runs []*run
	for _, ru := range s.st.runs {
		if ru.Repo == rp {
			runs = append(runs, ru)
		}
	}
	sortByID(runs, func(ru *run) int64 { return ru.ID })
	out := []any{}
	for _, ru := range runs {
		j := s.runJSON(ru)
		jobs := []any{}
		for _, jb := range ru.Jobs {
			jobs = append(jobs, s.jobJSON(jb))
		}
		j["jobs"] = jobs
		j["inputs"] = ru.Inputs
		out = append(out, j)
	}
	return out
}
