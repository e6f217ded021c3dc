package ghsim

import (
	"html"
	"net/http"
	"strconv"
)

func (s *Server) routes() {
	m := s.mux
	const rp = "/repos/{owner}/{repo}"
	m.HandleFunc("GET /rate_limit", s.handleRateLimit)
	m.HandleFunc("POST /app/installations/{id}/access_tokens", s.handleInstallationToken)
	m.HandleFunc("GET /search/issues", s.handleSearchIssues)
	m.HandleFunc("GET "+rp, s.handleGetRepo)
	m.HandleFunc("GET "+rp+"/collaborators/{username}/permission", s.handleCollaboratorPermission)
	m.HandleFunc("GET "+rp+"/pulls/{number}", s.handleGetPull)
	// /issues/{number}/x and /issues/comments/{id} overlap for ServeMux,
	// so one pattern takes both and issueRoute tells them apart.
	m.HandleFunc(rp+"/issues/{number}/{sub}", s.issueRoute)
	m.HandleFunc("DELETE "+rp+"/issues/{number}/labels/{name}", s.handleRemoveLabel)
	m.HandleFunc("POST "+rp+"/actions/workflows/{workflow}/dispatches", s.handleDispatch)
	m.HandleFunc("GET "+rp+"/actions/workflows/{workflow}/runs", s.handleListWorkflowRuns)
	m.HandleFunc("GET "+rp+"/actions/runs", s.handleListRuns)
	m.HandleFunc("GET "+rp+"/actions/runs/{run}", s.handleGetRun)
	m.HandleFunc("GET "+rp+"/actions/runs/{run}/jobs", s.handleListJobs)
	m.HandleFunc("POST "+rp+"/actions/runs/{run}/cancel", s.handleCancelRun)
	m.HandleFunc("GET "+rp+"/actions/jobs/{job}", s.handleGetJob)
	m.HandleFunc("POST "+rp+"/actions/runners/generate-jitconfig", s.handleGenerateJIT)
	m.HandleFunc("GET "+rp+"/actions/runners", s.handleListRunners)
	m.HandleFunc("GET "+rp+"/actions/runners/downloads", s.handleRunnerDownloads)
	m.HandleFunc("GET "+rp+"/actions/runners/{runner}", s.handleGetRunner)
	m.HandleFunc("DELETE "+rp+"/actions/runners/{runner}", s.handleDeleteRunner)
	m.HandleFunc("POST "+rp+"/statuses/{sha}", s.handleCreateStatus)
	m.HandleFunc("GET "+rp+"/commits/{ref}/statuses", s.handleListStatuses)
	m.HandleFunc("GET "+rp+"/commits/{ref}/status", s.handleCombinedStatus)
	m.HandleFunc("GET "+rp+"/commits/{ref}/check-runs", s.handleListCheckRuns)
	m.HandleFunc("POST "+rp+"/check-runs", s.handleCreateCheckRun)
	m.HandleFunc("GET "+rp+"/check-runs/{id}", s.handleGetCheckRun)
	m.HandleFunc("PATCH "+rp+"/check-runs/{id}", s.handleUpdateCheckRun)
	m.HandleFunc("GET "+rp+"/hooks/{hook}/deliveries", s.handleListDeliveries)
	m.HandleFunc("GET "+rp+"/hooks/{hook}/deliveries/{delivery}", s.handleGetDelivery)
	m.HandleFunc("POST "+rp+"/hooks/{hook}/deliveries/{delivery}/attempts", s.handleRedeliver)

	m.HandleFunc("POST /_ghsim/runner/redeem", s.handleRunnerRedeem)
	m.HandleFunc("GET /_ghsim/runner-packages/{file}", s.handleRunnerPackage)
	m.HandleFunc("POST /_ghsim/runner/acquire", s.handleRunnerAcquire)
	m.HandleFunc("POST /_ghsim/runner/step", s.handleRunnerStep)
	m.HandleFunc("POST /_ghsim/runner/log", s.handleRunnerLog)
	m.HandleFunc("POST /_ghsim/runner/heartbeat", s.handleRunnerHeartbeat)
	m.HandleFunc("POST /_ghsim/runner/complete", s.handleRunnerComplete)
	s.controlRoutes()
	s.scaleSetRoutes()
	s.actionServiceRoutes()

	m.HandleFunc("GET /{owner}/{repo}/actions/runs/{run}/job/{job}", s.handleJobPage)
}

// handleJobPage serves a job's log: the html_url of a job, the Details link
// buildfleet puts on statuses. ?raw=1 gives plain text.
func (s *Server) handleJobPage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, _ := strconv.ParseInt(r.PathValue("job"), 10, 64)
	j := s.st.jobs[id]
	if j == nil || strconv.FormatInt(j.Run.ID, 10) != r.PathValue("run") || j.Run.Repo.FullName() != fullName(r) {
		http.NotFound(w, r)
		return
	}
	if r.URL.Query().Get("raw") != "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(j.Log.String()))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	st := j.Status
	if j.Conclusion != "" {
		st += " / " + j.Conclusion
	}
	_, _ = w.Write([]byte("<!doctype html><title>" + html.EscapeString(j.Name) + "</title><h1>" +
		html.EscapeString(j.Name) + "</h1><p>run " + r.PathValue("run") + " · " + html.EscapeString(st) +
		" · runner " + html.EscapeString(j.RunnerName) + "</p><pre>" + html.EscapeString(j.Log.String()) + "</pre>"))
}

func (s *Server) issueRoute(w http.ResponseWriter, r *http.Request) {
	num, sub := r.PathValue("number"), r.PathValue("sub")
	var h http.HandlerFunc
	if num == "comments" {
		r.SetPathValue("id", sub)
		switch r.Method {
		case http.MethodGet:
			h = s.handleGetComment
		case http.MethodPatch:
			h = s.handleEditComment
		}
	} else {
		switch r.Method + " " + sub {
		case "GET labels":
			h = s.handleListLabels
		case "POST labels":
			h = s.handleAddLabels
		case "GET events":
			h = s.handleIssueEvents
		case "GET comments":
			h = s.handleListComments
		case "POST comments":
			h = s.handleCreateComment
		}
	}
	if h == nil {
		notFound(w)
		return
	}
	h(w, r)
}
