package ghsim

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

func (s *Server) workflowJSON(ru *run) obj {
	id := strconv.FormatInt(ru.WorkflowID, 10)
	html := s.base + "/" + ru.Repo.FullName() + "/blob/" + ru.Repo.DefaultBranch + "/" + ru.WF.Path
	return obj{
		"id": ru.WorkflowID, "node_id": nodeID("Workflow", ru.WorkflowID), "name": ru.WF.Name,
		"path": ru.WF.Path, "state": "active", "created_at": ts(ru.Repo.CreatedAt), "updated_at": ts(ru.Repo.CreatedAt),
		"url":       s.repoAPI(ru.Repo) + "/actions/workflows/" + id,
		"html_url":  html,
		"badge_url": s.base + "/" + ru.Repo.FullName() + "/workflows/" + pathEscape(ru.WF.Name) + "/badge.svg",
	}
}

func (s *Server) runJSON(ru *run) obj {
	api := s.runAPI(ru)
	rapi := s.repoAPI(ru.Repo)
	suite := ru.ID + 1
	return obj{
		"id": ru.ID, "name": ru.WF.Name, "node_id": nodeID("WorkflowRun", ru.ID),
		"head_branch": ru.HeadBranch, "head_sha": ru.HeadSHA, "path": ru.WF.Path,
		"display_title": ru.DisplayTitle, "run_number": ru.Number, "event": "workflow_dispatch",
		"status": ru.Status, "conclusion": nullStr(ru.Conclusion), "workflow_id": ru.WorkflowID,
		"check_suite_id": suite, "check_suite_node_id": nodeID("CheckSuite", suite),
		"url": api, "html_url": s.runHTML(ru), "pull_requests": []any{},
		"created_at": ts(ru.CreatedAt), "updated_at": ts(ru.UpdatedAt),
		"actor": s.userJSON(ru.Actor), "triggering_actor": s.userJSON(ru.Actor),
		"run_attempt": 1, "referenced_workflows": []any{}, "run_started_at": ts(firstTime(ru.StartedAt, ru.CreatedAt)),
		"jobs_url": api + "/jobs", "logs_url": api + "/logs",
		"check_suite_url": rapi + "/check-suites/" + strconv.FormatInt(suite, 10),
		"artifacts_url":   api + "/artifacts", "cancel_url": api + "/cancel", "rerun_url": api + "/rerun",
		"previous_attempt_url": nil, "workflow_url": rapi + "/actions/workflows/" + strconv.FormatInt(ru.WorkflowID, 10),
		"head_commit": s.simpleCommitJSON(ru.HeadSHA, ru.Repo.CreatedAt),
		"repository":  s.repoJSON(ru.Repo), "head_repository": s.repoJSON(ru.Repo),
		"head_repository_id": ru.Repo.ID,
	}
}

func firstTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// JobURL is the page ghsim serves a job's log at: the job's html_url.
func (s *Server) jobHTML(j *job) string {
	return s.runHTML(j.Run) + "/job/" + strconv.FormatInt(j.ID, 10)
}

func (s *Server) jobJSON(j *job) obj {
	rapi := s.repoAPI(j.Run.Repo)
	id := strconv.FormatInt(j.ID, 10)
	steps := []any{}
	for _, st := range j.Steps {
		steps = append(steps, obj{
			"name": st.Name, "status": st.Status, "conclusion": nullStr(st.Conclusion), "number": st.Number,
			"started_at": ts(st.StartedAt), "completed_at": ts(st.CompletedAt),
		})
	}
	labels := []any{}
	for _, l := range j.Labels {
		labels = append(labels, l)
	}
	var rid, gid, rname, gname any
	if j.RunnerID != 0 {
		rid, rname, gid, gname = j.RunnerID, j.RunnerName, 1, "Default"
	}
	started := j.StartedAt
	if started.IsZero() {
		started = j.CreatedAt
	}
	return obj{
		"id": j.ID, "run_id": j.Run.ID, "workflow_name": j.Run.WF.Name, "head_branch": j.Run.HeadBranch,
		"run_url": s.runAPI(j.Run), "run_attempt": 1, "node_id": nodeID("CheckRun", j.ID),
		"head_sha": j.Run.HeadSHA, "url": rapi + "/actions/jobs/" + id, "html_url": s.jobHTML(j),
		"status": j.Status, "conclusion": nullStr(j.Conclusion), "created_at": ts(j.CreatedAt),
		"started_at": ts(started), "completed_at": ts(j.CompletedAt), "name": j.Name,
		"steps": steps, "check_run_url": rapi + "/check-runs/" + id, "labels": labels,
		"runner_id": rid, "runner_name": rname, "runner_group_id": gid, "runner_group_name": gname,
	}
}

func (s *Server) lookupRun(w http.ResponseWriter, r *http.Request) (*run, bool) {
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return nil, false
	}
	id, _ := strconv.ParseInt(r.PathValue("run"), 10, 64)
	ru := s.st.runs[id]
	if ru == nil || ru.Repo != rp {
		notFound(w)
		return nil, false
	}
	return ru, true
}

func (s *Server) handleGetRun(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ru, ok := s.lookupRun(w, r); ok {
		writeJSON(w, http.StatusOK, s.runJSON(ru))
	}
}

// handleListRuns lists a repository's runs: GET /repos/{o}/{r}/actions/runs.
func (s *Server) handleListRuns(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rp, ok := s.lookupRepo(w, r); ok {
		s.listRuns(w, r, rp, 0)
	}
}

// handleListWorkflowRuns lists one workflow's runs:
// GET /repos/{o}/{r}/actions/workflows/{workflow_id}/runs, where
// workflow_id is the file name (buildbots.yml) or the numeric id. A
// workflow that is neither a file in the repository's workflows folder nor
// the workflow of a run is 404.
func (s *Server) handleListWorkflowRuns(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return
	}
	id := s.workflowID(rp, r.PathValue("workflow"))
	if id == 0 {
		notFound(w)
		return
	}
	s.listRuns(w, r, rp, id)
}

// workflowID resolves a workflow_id path parameter to the workflow's id,
// giving a workflow file its id on first mention; 0 is unknown.
func (s *Server) workflowID(rp *repo, ref string) int64 {
	if n, err := strconv.ParseInt(ref, 10, 64); err == nil {
		for _, id := range rp.WorkflowIDs {
			if id == n {
				return id
			}
		}
		return 0
	}
	if id := rp.WorkflowIDs[ref]; id != 0 {
		return id
	}
	if !workflowExists(rp.WorkflowDir, ref) {
		return 0
	}
	rp.WorkflowIDs[ref] = s.st.id()
	return rp.WorkflowIDs[ref]
}

// listRuns answers a runs list of rp (of workflow wfID, when not 0), newest
// first, filtered like GitHub by event, status (a status or a conclusion),
// branch, head_sha, actor and created (search date-range syntax), and
// paginated with a Link header.
func (s *Server) listRuns(w http.ResponseWriter, r *http.Request, rp *repo, wfID int64) {
	q := r.URL.Query()
	var created timeRange
	if c := q.Get("created"); c != "" {
		var err error
		if created, err = parseCreated(c); err != nil {
			writeValidation(w, validationError{Resource: "WorkflowRun", Code: "invalid", Field: "created", Message: err.Error()})
			return
		}
	}
	var list []*run
	for _, ru := range s.st.runs {
		if ru.Repo != rp || (wfID != 0 && ru.WorkflowID != wfID) {
			continue
		}
		if e := q.Get("event"); e != "" && e != "workflow_dispatch" {
			continue
		}
		if b := q.Get("branch"); b != "" && b != ru.HeadBranch {
			continue
		}
		if st := q.Get("status"); st != "" && st != ru.Status && st != ru.Conclusion {
			continue
		}
		if sha := q.Get("head_sha"); sha != "" && sha != ru.HeadSHA {
			continue
		}
		if a := q.Get("actor"); a != "" && !strings.EqualFold(a, ru.Actor.Login) {
			continue
		}
		if !created.contains(ru.CreatedAt) {
			continue
		}
		list = append(list, ru)
	}
	sortByID(list, func(ru *run) int64 { return -ru.ID })
	out := []any{}
	for _, ru := range list {
		out = append(out, s.runJSON(ru))
	}
	writeJSON(w, http.StatusOK, obj{"total_count": len(out), "workflow_runs": paginate(w, r, out)})
}

func (s *Server) handleListJobs(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ru, ok := s.lookupRun(w, r)
	if !ok {
		return
	}
	out := []any{}
	for _, j := range ru.Jobs {
		out = append(out, s.jobJSON(j))
	}
	writeJSON(w, http.StatusOK, obj{"total_count": len(out), "jobs": paginate(w, r, out)})
}

func (s *Server) handleGetJob(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("job"), 10, 64)
	j := s.st.jobs[id]
	if j == nil || j.Run.Repo != rp {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.jobJSON(j))
}

// handleCancelRun answers 202 and cancels; a completed run is 409 like GitHub.
func (s *Server) handleCancelRun(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ru, ok := s.lookupRun(w, r)
	if !ok {
		return
	}
	if ru.Status == "completed" {
		writeError(w, http.StatusConflict, "Cannot cancel a workflow run that is completed.")
		return
	}
	s.cancelRun(ru)
	writeJSON(w, http.StatusAccepted, obj{})
}
