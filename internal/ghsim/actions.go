package ghsim

import (
	"net/http"
	"strconv"
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

// handleListRuns lists runs newest first, filtered by event, status (a
// status or a conclusion, as on GitHub) and branch.
func (s *Server) handleListRuns(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	var list []*run
	for _, ru := range s.st.runs {
		if ru.Repo != rp {
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
