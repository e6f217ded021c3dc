package ghsim

import (
	"net/http"
	"sort"
	"strconv"
	"time"
)

// checkPulls lists the open PRs of rp whose head is sha in rp itself:
// GitHub leaves pull_requests empty for heads in forks.
func (s *Server) checkPulls(rp *repo, sha string) []any {
	out := []any{}
	for _, p := range rp.Issues {
		if p.State == "open" && p.HeadSHA == sha && p.HeadRepo == rp {
			out = append(out, s.pullMinimalJSON(rp, p))
		}
	}
	return out
}

func (s *Server) checkRunJSON(c *checkRun) obj {
	api := s.repoAPI(c.Repo)
	id := strconv.FormatInt(c.ID, 10)
	return obj{
		"id": c.ID, "head_sha": c.HeadSHA, "node_id": nodeID("CheckRun", c.ID),
		"external_id": c.ExternalID, "url": api + "/check-runs/" + id,
		"html_url": s.base + "/" + c.Repo.FullName() + "/runs/" + id, "details_url": nullStr(c.DetailsURL),
		"status": c.Status, "conclusion": nullStr(c.Conclusion),
		"started_at": ts(c.StartedAt), "completed_at": ts(c.CompletedAt),
		"output": obj{
			"title": nullStr(c.Title), "summary": nullStr(c.Summary), "text": nullStr(c.Text),
			"annotations_count": 0, "annotations_url": api + "/check-runs/" + id + "/annotations",
		},
		"name": c.Name,
		"check_suite": obj{
			"id": c.SuiteID, "node_id": nodeID("CheckSuite", c.SuiteID), "head_branch": s.branchOf(c.Repo, c.HeadSHA),
			"head_sha": c.HeadSHA, "status": c.Status, "conclusion": nullStr(c.Conclusion),
			"url":    api + "/check-suites/" + strconv.FormatInt(c.SuiteID, 10),
			"before": "0000000000000000000000000000000000000000", "after": c.HeadSHA, "pull_requests": s.checkPulls(c.Repo, c.HeadSHA),
			"app": s.appJSON(), "created_at": ts(c.CreatedAt), "updated_at": ts(c.CreatedAt),
		},
		"app": s.appJSON(), "pull_requests": s.checkPulls(c.Repo, c.HeadSHA),
	}
}

type checkRunBody struct {
	Name        *string    `json:"name"`
	HeadSHA     *string    `json:"head_sha"`
	DetailsURL  *string    `json:"details_url"`
	ExternalID  *string    `json:"external_id"`
	Status      *string    `json:"status"`
	Conclusion  *string    `json:"conclusion"`
	StartedAt   *time.Time `json:"started_at"`
	CompletedAt *time.Time `json:"completed_at"`
	Output      *struct {
		Title   string `json:"title"`
		Summary string `json:"summary"`
		Text    string `json:"text"`
	} `json:"output"`
}

// apply copies b into c and reports a validation problem, if any.
func (b *checkRunBody) apply(c *checkRun, now time.Time) string {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&c.Name, b.Name)
	set(&c.DetailsURL, b.DetailsURL)
	set(&c.ExternalID, b.ExternalID)
	set(&c.Status, b.Status)
	set(&c.Conclusion, b.Conclusion)
	if b.StartedAt != nil {
		c.StartedAt = *b.StartedAt
	}
	if b.CompletedAt != nil {
		c.CompletedAt = *b.CompletedAt
	}
	if b.Output != nil {
		c.Title, c.Summary, c.Text = b.Output.Title, b.Output.Summary, b.Output.Text
	}
	if c.Conclusion != "" || !c.CompletedAt.IsZero() {
		c.Status = "completed"
	}
	switch c.Status {
	case "queued", "in_progress", "completed", "waiting", "requested", "pending":
	default:
		return "status"
	}
	if c.Status == "completed" {
		if c.Conclusion == "" {
			return "conclusion"
		}
		if c.CompletedAt.IsZero() {
			c.CompletedAt = now
		}
	}
	return ""
}

func (s *Server) handleCreateCheckRun(w http.ResponseWriter, r *http.Request) {
	if !s.mayWriteChecks(w, r) {
		return
	}
	var b checkRunBody
	if !decodeBody(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return
	}
	if b.Name == nil || b.HeadSHA == nil {
		writeValidation(w, validationError{Resource: "CheckRun", Code: "missing_field", Field: "name"})
		return
	}
	c := &checkRun{ID: s.st.id(), Repo: rp, Status: "queued", SuiteID: s.st.id(), CreatedAt: s.now(), StartedAt: s.now()}
	c.HeadSHA = *b.HeadSHA
	if f := b.apply(c, s.now()); f != "" {
		writeValidation(w, validationError{Resource: "CheckRun", Code: "invalid", Field: f})
		return
	}
	s.st.checkRuns[c.ID] = c
	s.emitCheckRun(rp, c, "created", s.actor(r))
	writeJSON(w, http.StatusCreated, s.checkRunJSON(c))
}

func (s *Server) lookupCheckRun(w http.ResponseWriter, r *http.Request) (*checkRun, bool) {
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return nil, false
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	c := s.st.checkRuns[id]
	if c == nil || c.Repo != rp {
		notFound(w)
		return nil, false
	}
	return c, true
}

func (s *Server) handleUpdateCheckRun(w http.ResponseWriter, r *http.Request) {
	if !s.mayWriteChecks(w, r) {
		return
	}
	var b checkRunBody
	if !decodeBody(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.lookupCheckRun(w, r)
	if !ok {
		return
	}
	was := c.Status
	if f := b.apply(c, s.now()); f != "" {
		writeValidation(w, validationError{Resource: "CheckRun", Code: "invalid", Field: f})
		return
	}
	if c.Status == "completed" && was != "completed" {
		s.emitCheckRun(c.Repo, c, "completed", s.actor(r))
	}
	writeJSON(w, http.StatusOK, s.checkRunJSON(c))
}

func (s *Server) handleGetCheckRun(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.lookupCheckRun(w, r); ok {
		writeJSON(w, http.StatusOK, s.checkRunJSON(c))
	}
}

func (s *Server) handleListCheckRuns(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return
	}
	sha := resolveRef(rp, r.PathValue("ref"))
	name := r.URL.Query().Get("check_name")
	var list []*checkRun
	for _, c := range s.st.checkRuns {
		if c.Repo == rp && c.HeadSHA == sha && (name == "" || c.Name == name) {
			list = append(list, c)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID > list[j].ID })
	out := []any{}
	for _, c := range list {
		out = append(out, s.checkRunJSON(c))
	}
	writeJSON(w, http.StatusOK, obj{"total_count": len(out), "check_runs": paginate(w, r, out)})
}

// branchOf names the branch whose tip is sha: a PR's head ref or the
// default branch.
func (s *Server) branchOf(rp *repo, sha string) string {
	for _, p := range rp.Issues {
		if p.HeadSHA == sha {
			return p.HeadRef
		}
	}
	return rp.DefaultBranch
}
