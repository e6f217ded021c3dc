package ghsim

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
)

// The message queue of a scale set: what is available, acquiring, and the
// long-polled messages.

// acquirableJSON is ARC's AcquirableJob.
func (s *Server) acquirableJSON(rq *ssRequest) obj {
	m := s.jobMessage("JobAvailable", rq, nil)
	out := obj{}
	for _, k := range []string{"acquireJobUrl", "messageType", "runnerRequestId", "repositoryName", "ownerName", "jobWorkflowRef", "eventName", "requestLabels"} {
		out[k] = m[k]
	}
	return out
}

// handleAcquirableJobs lists the set's available jobs; 204 when there are
// none (ARC's GetAcquirableJobs takes 204 as an empty list).
func (s *Server) handleAcquirableJobs(w http.ResponseWriter, _ *http.Request, set *scaleSet) {
	list := []obj{}
	for _, rq := range s.acquirable(set) {
		list = append(list, s.acquirableJSON(rq))
	}
	if len(list) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, obj{"count": len(list), "value": list})
}

// queueSession authenticates a message queue call ("Bearer <message queue
// access token>"); an expired or unknown token is 401 with a text body,
// which ARC turns into MessageQueueTokenExpiredError. Callers hold s.mu.
func (s *Server) queueSession(w http.ResponseWriter, r *http.Request, set *scaleSet) bool {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	se := set.session
	if se == nil || (r.PathValue("sid") != "" && !strings.EqualFold(se.ID, r.PathValue("sid"))) ||
		subtle.ConstantTimeCompare([]byte(se.Token), []byte(tok)) != 1 || s.opts.Now().After(se.TokenExpires) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("message queue token expired or invalid"))
		return false
	}
	return true
}

// handleAcquireJobs takes the listed available requests for the set and
// assigns them to it: 200 {count, value: [acquired ids]}. Requests already
// assigned to the set count as acquired; others (gone, done, another
// set's) are left out.
func (s *Server) handleAcquireJobs(w http.ResponseWriter, r *http.Request) {
	var ids []int64
	if !decodeBody(w, r, &ids) {
		return
	}
	id, _ := strconv.Atoi(r.PathValue("id"))
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.scaleSets()
	set := ss.sets[id]
	if set == nil {
		writeActionsError(w, http.StatusNotFound, "RunnerScaleSetNotFoundException", "runner scale set not found")
		return
	}
	if !s.queueSession(w, r, set) {
		return
	}
	got := []int64{}
	for _, want := range ids {
		for _, rq := range ss.reqs {
			if rq.ID != want || rq.Set != set {
				continue
			}
			if rq.State == ssAvailable {
				rq.State = ssAssigned
				s.postJobMessage(set, "JobAssigned", rq, nil)
			}
			if rq.State == ssAssigned {
				got = append(got, rq.ID)
			}
		}
	}
	s.cond.Broadcast()
	writeJSON(w, http.StatusOK, obj{"count": len(got), "value": got})
}

// handleGetMessage long-polls for the oldest message after lastMessageId:
// 200 with it, or 202 when none came in time (ARC: 202 is "no message").
func (s *Server) handleGetMessage(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	last, _ := strconv.ParseInt(r.URL.Query().Get("lastMessageId"), 10, 64)
	s.mu.Lock()
	wait := scaleSetPollWait
	if d := s.scaleSets().pollWait; d > 0 {
		wait = d
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	defer s.wakeWhenDone(ctx)()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		set := s.scaleSets().sets[id]
		if set == nil {
			writeActionsError(w, http.StatusNotFound, "RunnerScaleSetNotFoundException", "runner scale set not found")
			return
		}
		if !s.queueSession(w, r, set) {
			return
		}
		for _, m := range set.queue {
			if m.ID > last {
				writeJSON(w, http.StatusOK, obj{"messageId": m.ID, "messageType": m.Type, "body": m.Body, "statistics": s.statistics(set)})
				return
			}
		}
		select {
		case <-s.closed:
			w.WriteHeader(http.StatusAccepted)
			return
		default:
		}
		if ctx.Err() != nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		s.cond.Wait()
	}
}

func (s *Server) handleDeleteMessage(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	mid, _ := strconv.ParseInt(r.PathValue("mid"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.scaleSets().sets[id]
	if set == nil {
		writeActionsError(w, http.StatusNotFound, "RunnerScaleSetNotFoundException", "runner scale set not found")
		return
	}
	if !s.queueSession(w, r, set) {
		return
	}
	for i, m := range set.queue {
		if m.ID == mid {
			set.queue = append(set.queue[:i:i], set.queue[i+1:]...)
			break
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
