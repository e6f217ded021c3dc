package ghsim

import (
	"context"
	"crypto/subtle"
	"net/http"
	"time"
)

// The runner protocol is ghsim's own, plain HTTP+JSON under /_ghsim/runner/:
//
//	redeem    {runner_id, version}, with the runner's Actions service token (from the
//	          OAuth exchange that a real runner makes too) -> {session};
//	          once per JIT config (409 after; 403 with GitHub's deprecation
//	          message below the minimum version)
//	acquire   {session, wait_ms}      -> 200 JobSpec | 204 nothing yet | 410 runner gone
//	step      {session, job_id, number, status, conclusion}
//	log       {session, job_id, text}
//	heartbeat {session, job_id}    -> {cancel}
//	complete  {session, job_id, conclusion}; the runner is then deleted (ephemeral)

// JobSpec is the job a runner receives, with expressions already evaluated.
type JobSpec struct {
	JobID          int64             `json:"job_id"`
	RunID          int64             `json:"run_id"`
	Name           string            `json:"name"`
	Repo           string            `json:"repo"`
	HeadSHA        string            `json:"head_sha"`
	HTMLURL        string            `json:"html_url"`
	Env            map[string]string `json:"env"`
	Steps          []*jobStep        `json:"steps"`
	TimeoutMinutes int               `json:"timeout_minutes,omitempty"`
	Simulate       *simulation       `json:"simulate,omitempty"`
}

type runnerReq struct {
	RunnerID   int64  `json:"runner_id"`
	Session    string `json:"session"`
	WaitMS     int    `json:"wait_ms"`
	JobID      int64  `json:"job_id"`
	Number     int    `json:"number"`
	Status     string `json:"status"`
	Conclusion string `json:"conclusion"`
	Text       string `json:"text"`
	// Version is the runner's version, sent when its session starts.
	Version string `json:"version,omitempty"`
}

func (s *Server) handleRunnerRedeem(w http.ResponseWriter, r *http.Request) {
	var b runnerReq
	if !decodeBody(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rn := s.st.runner[b.RunnerID]
	t := s.svc().tokens[bearerToken(r)]
	switch {
	case rn == nil:
		writeError(w, http.StatusNotFound, "runner not found (deleted, or never registered)")
	case t == nil || t.jobID != 0 || t.runnerID != rn.ID || !s.opts.Now().Before(t.expires):
		writeError(w, http.StatusUnauthorized, "bad runner token")
	case rn.session != "":
		writeError(w, http.StatusConflict, "JIT config already used")
	case olderVersion(b.Version, s.st.pkgs.minVersion):
		// As GitHub: the registration stays, offline, and its job queued.
		writeError(w, http.StatusForbidden, deprecatedMessage(b.Version))
	default:
		rn.session, rn.Status = randomHex(16), "online"
		s.seen(rn)
		writeJSON(w, http.StatusOK, obj{"session": rn.session, "name": rn.Name, "labels": rn.Labels})
	}
}

// sessionRunner authenticates a runner call. Callers hold s.mu.
func (s *Server) sessionRunner(w http.ResponseWriter, b runnerReq) (*runner, bool) {
	rn := s.st.runner[b.RunnerID]
	if rn == nil {
		writeError(w, http.StatusGone, "runner deleted")
		return nil, false
	}
	if rn.session == "" || subtle.ConstantTimeCompare([]byte(rn.session), []byte(b.Session)) != 1 {
		writeError(w, http.StatusUnauthorized, "bad runner session")
		return nil, false
	}
	s.seen(rn)
	return rn, true
}

// handleRunnerAcquire long-polls for the oldest queued job of the runner's
// repository whose runs-on labels the runner all has.
func (s *Server) handleRunnerAcquire(w http.ResponseWriter, r *http.Request) {
	var b runnerReq
	if !decodeBody(w, r, &b) {
		return
	}
	wait := time.Duration(min(max(b.WaitMS, 0), 60000)) * time.Millisecond
	deadline := time.Now().Add(wait)
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()
	defer s.wakeWhenDone(ctx)()
	s.mu.Lock()
	defer s.mu.Unlock()
	if rn := s.st.runner[b.RunnerID]; rn != nil {
		defer s.polling(rn)()
	}
	for {
		rn, ok := s.sessionRunner(w, b)
		if !ok {
			return
		}
		if j := s.pickJob(rn); j != nil {
			s.startJob(j, rn)
			writeJSON(w, http.StatusOK, JobSpec{
				JobID: j.ID, RunID: j.Run.ID, Name: j.Name, Repo: j.Run.Repo.FullName(), HeadSHA: j.Run.HeadSHA,
				HTMLURL: s.jobHTML(j), Env: j.Env, Steps: j.Steps, TimeoutMinutes: j.TimeoutMinutes, Simulate: j.Simulate,
			})
			return
		}
		select {
		case <-s.closed:
			w.WriteHeader(http.StatusNoContent)
			return
		default:
		}
		if ctx.Err() != nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		s.cond.Wait()
	}
}

func (s *Server) pickJob(rn *runner) *job {
	if rn.Busy {
		return nil
	}
	var best *job
	for _, j := range s.st.jobs {
		if j.Status == "queued" && j.Run.Repo == rn.Repo && labelsMatch(j.Labels, rn.Labels) && s.scaleSetAllows(j, rn) && (best == nil || j.ID < best.ID) {
			best = j
		}
	}
	return best
}

// runnerJob authenticates a call about the runner's current job.
func (s *Server) runnerJob(w http.ResponseWriter, r *http.Request) (*runner, *job, runnerReq, bool) {
	var b runnerReq
	if !decodeBody(w, r, &b) {
		return nil, nil, b, false
	}
	s.mu.Lock()
	rn, ok := s.sessionRunner(w, b)
	if !ok {
		s.mu.Unlock()
		return nil, nil, b, false
	}
	j := s.st.jobs[b.JobID]
	if j == nil || j.RunnerID != rn.ID {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "not this runner's job")
		return nil, nil, b, false
	}
	return rn, j, b, true
}

func (s *Server) handleRunnerStep(w http.ResponseWriter, r *http.Request) {
	_, j, b, ok := s.runnerJob(w, r)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	for _, st := range j.Steps {
		if st.Number == b.Number {
			st.Status, st.Conclusion = b.Status, b.Conclusion
			if b.Status == "in_progress" {
				st.StartedAt = s.now()
			}
			if b.Status == "completed" {
				st.CompletedAt = s.now()
			}
		}
	}
	writeJSON(w, http.StatusOK, obj{})
}

func (s *Server) handleRunnerLog(w http.ResponseWriter, r *http.Request) {
	_, j, b, ok := s.runnerJob(w, r)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	j.Log.WriteString(b.Text)
	writeJSON(w, http.StatusOK, obj{})
}

func (s *Server) handleRunnerHeartbeat(w http.ResponseWriter, r *http.Request) {
	_, j, _, ok := s.runnerJob(w, r)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	writeJSON(w, http.StatusOK, obj{"cancel": j.CancelRequested})
}

func (s *Server) handleRunnerComplete(w http.ResponseWriter, r *http.Request) {
	rn, j, b, ok := s.runnerJob(w, r)
	if !ok {
		return
	}
	defer s.mu.Unlock()
	switch b.Conclusion {
	case "success", "failure", "cancelled", "timed_out", "skipped", "neutral":
	default:
		writeError(w, http.StatusUnprocessableEntity, "bad conclusion "+b.Conclusion)
		return
	}
	s.completeJob(j, b.Conclusion)
	rn.Busy = false
	s.deleteRunner(rn)
	writeJSON(w, http.StatusOK, obj{})
}
