package ghsim

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// While it runs a job the runner's worker reports with the job's own token
// (github-act-runner protocol/connection.go, protocol/logger):
//
//	PATCH .../plans/{plan}/timelines/{timeline}/records         step states
//	POST  .../plans/{plan}/timelines/{timeline}/records/{r}/feed live lines
//	POST  .../plans/{plan}/logs, then .../logs/{id} (octet-stream) log files
//	POST  .../plans/{plan}/events  {"name":"JobCompleted","result":...}
//
// ghsim turns them into what a GitHub user sees: the job's steps with their
// states, the log page (live lines while it runs; the uploaded job log once
// it is complete) and the job's conclusion, which completes the job and
// sends workflow_job and workflow_run webhooks.

// timelineRecord is the part of a TimelineRecord ghsim keeps.
type timelineRecord struct {
	ID         string `json:"id"`
	ParentID   string `json:"parentId"`
	Type       string `json:"type"`
	Name       string `json:"name"`
	State      string `json:"state"`
	Result     string `json:"result"`
	StartTime  string `json:"startTime"`
	FinishTime string `json:"finishTime"`
	Order      int    `json:"order"`
	Log        *struct {
		ID int `json:"id"`
	} `json:"log"`
}

// planRequest authenticates a call on a plan with its job's token.
// Callers hold s.mu.
func (s *Server) planRequest(w http.ResponseWriter, r *http.Request) (*jobRequest, bool) {
	t, ok := s.svcAuth(w, r)
	if !ok {
		return nil, false
	}
	req := s.svc().plans[r.PathValue("plan")]
	if req == nil || t.jobID != req.job.ID {
		writeSvcError(w, http.StatusNotFound, "TaskOrchestrationPlanNotFoundException", "No plan "+r.PathValue("plan")+" for this token.")
		return nil, false
	}
	if tl := r.PathValue("timeline"); tl != "" && tl != req.timelineID {
		writeSvcError(w, http.StatusNotFound, "TimelineNotFoundException", "No timeline "+tl+".")
		return nil, false
	}
	return req, true
}

func (s *Server) handleTimelineRecords(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Value []*timelineRecord `json:"value"`
	}
	if !decodeBody(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.planRequest(w, r)
	if !ok {
		return
	}
	for _, rec := range b.Value {
		if rec == nil || rec.ID == "" {
			continue
		}
		req.records[rec.ID] = rec
		if rec.ID == req.jobGUID && rec.Log != nil {
			req.jobLogID = rec.Log.ID
		}
		if n, ok := req.stepIDs[rec.ID]; ok && !req.finished {
			s.updateStep(req.job, n, rec)
		}
	}
	writeJSON(w, http.StatusOK, obj{"count": len(b.Value), "value": b.Value})
}

// updateStep copies a step record's state onto the job's step n.
func (s *Server) updateStep(j *job, n int, rec *timelineRecord) {
	for _, st := range j.Steps {
		if st.Number != n {
			continue
		}
		switch strings.ToLower(rec.State) {
		case "inprogress":
			if st.Status != "in_progress" {
				st.Status, st.StartedAt = "in_progress", s.now()
			}
		case "completed":
			if st.Status != "completed" {
				if st.StartedAt.IsZero() {
					st.StartedAt = s.now()
				}
				st.Status, st.CompletedAt = "completed", s.now()
			}
			st.Conclusion = conclusionOf(rec.Result)
		}
	}
}

// conclusionOf maps a TaskResult to a GitHub conclusion.
func conclusionOf(r string) string {
	switch strings.ToLower(r) {
	case "succeeded", "succeededwithissues":
		return "success"
	case "skipped":
		return "skipped"
	case "canceled", "cancelled", "abandoned":
		return "cancelled"
	}
	return "failure"
}

func (s *Server) handleFeed(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Value []string `json:"value"`
	}
	if !decodeBody(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.planRequest(w, r)
	if !ok {
		return
	}
	// Lines can come after the job completed (the runner sends its live
	// lines in batches); they are appended to the page, not dropped.
	if rec := req.records[r.PathValue("record")]; rec != nil && req.lastFeed != rec.ID && rec.Name != "" && !req.finished {
		req.job.Log.WriteString("##[group]" + rec.Name + "\n")
	}
	req.lastFeed = r.PathValue("record")
	for _, l := range b.Value {
		req.job.Log.WriteString(l + "\n")
	}
	w.WriteHeader(http.StatusOK)
}

// handleCreateLog answers a TaskLog with a new id; the content follows.
func (s *Server) handleCreateLog(w http.ResponseWriter, r *http.Request) {
	var b map[string]any
	if !decodeBody(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.planRequest(w, r)
	if !ok {
		return
	}
	id := len(req.logs) + 1
	req.logs[id] = nil
	b["id"] = id
	b["location"] = s.base + serviceRoot + "_apis/distributedtask/plans/" + req.planID + "/logs/" + strconv.Itoa(id)
	writeJSON(w, http.StatusOK, b)
}

// maxLogBytes bounds one uploaded log file.
const maxLogBytes = 64 << 20

func (s *Server) handleUploadLog(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxLogBytes+1))
	if err != nil || len(body) > maxLogBytes {
		writeSvcError(w, http.StatusRequestEntityTooLarge, "VssServiceException", "log too large or unreadable")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.planRequest(w, r)
	if !ok {
		return
	}
	id, _ := strconv.Atoi(r.PathValue("log"))
	if _, ok := req.logs[id]; !ok {
		writeSvcError(w, http.StatusNotFound, "TaskLogNotFoundException", "No log "+r.PathValue("log")+".")
		return
	}
	req.logs[id] = append(req.logs[id], body...)
	writeJSON(w, http.StatusOK, obj{"id": id, "lineCount": strings.Count(string(req.logs[id]), "\n")})
}

// handlePlanEvent takes JobCompleted: the job ends with the runner's
// result, and the ephemeral runner is removed.
func (s *Server) handlePlanEvent(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name      string `json:"name"`
		JobID     string `json:"jobId"`
		RequestID int64  `json:"requestId"`
		Result    string `json:"result"`
	}
	if !decodeBody(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.planRequest(w, r)
	if !ok {
		return
	}
	if !strings.EqualFold(b.Name, "JobCompleted") || b.JobID != req.jobGUID || b.RequestID != req.id {
		writeSvcError(w, http.StatusBadRequest, "ArgumentException", "Unknown event "+b.Name+" for job "+b.JobID+".")
		return
	}
	if !req.finished {
		req.finished = true
		j := req.job
		// The uploaded job log is the whole log; the live lines may miss
		// some (a failed feed call is not retried).
		if full := req.logs[req.jobLogID]; req.jobLogID != 0 && len(full) > 0 {
			j.Log.Reset()
			j.Log.Write(stripTimestamps(full))
		}
		conclusion := conclusionOf(b.Result)
		if j.CancelRequested && conclusion != "success" {
			conclusion = "cancelled"
		}
		s.completeJob(j, conclusion)
		if rn := s.st.runner[req.runnerID]; rn != nil {
			rn.Busy = false
			s.deleteRunner(rn)
		}
	}
	w.WriteHeader(http.StatusOK)
}

// stripTimestamps removes the runner's "2006-01-02T15:04:05.0000000Z "
// line prefixes, as GitHub's log page hides them.
func stripTimestamps(b []byte) []byte {
	lines := strings.SplitAfter(string(b), "\n")
	var out strings.Builder
	for _, l := range lines {
		if len(l) > 29 && l[28] == ' ' && l[27] == 'Z' {
			if _, err := time.Parse("2006-01-02T15:04:05.0000000Z", l[:28]); err == nil {
				l = l[29:]
			}
		}
		out.WriteString(l)
	}
	return []byte(out.String())
}
