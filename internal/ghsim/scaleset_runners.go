package ghsim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Runners of scale sets: JIT configs generated through a set, and the
// agents endpoints ARC uses to find and remove them.

// handleScaleSetJIT registers an ephemeral runner in the set and returns
// its JIT config: 200 {runner: {id, name, runnerScaleSetId},
// encodedJITConfig}. The runner carries the set's labels and takes only
// jobs assigned to the set.
func (s *Server) handleScaleSetJIT(w http.ResponseWriter, r *http.Request, set *scaleSet) {
	var b struct {
		Name       string `json:"name"`
		WorkFolder string `json:"workFolder"`
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil || strings.TrimSpace(b.Name) == "" {
		writeActionsError(w, http.StatusBadRequest, "ArgumentException", "name is required")
		return
	}
	rp := set.Repo
	if _, dup := rp.Runners[strings.ToLower(b.Name)]; dup {
		// Guess: the service's name for it, as actions/runner reports a
		// duplicate agent; the status code is not documented.
		writeActionsError(w, http.StatusConflict, "AgentExistsException", "A runner with the name "+b.Name+" already exists.")
		return
	}
	if b.WorkFolder == "" {
		b.WorkFolder = "_work"
	}
	rn := &runner{
		ID: s.st.id(), Repo: rp, Name: b.Name, Labels: append([]string(nil), set.Labels...), GroupID: set.Group.ID,
		WorkFolder: b.WorkFolder, Status: "offline",
	}
	key, err := s.keys.take()
	if err != nil {
		writeActionsError(w, http.StatusInternalServerError, "VssServiceException", err.Error())
		return
	}
	cfg, err := s.encodeJIT(rn, key)
	if err != nil {
		writeActionsError(w, http.StatusInternalServerError, "VssServiceException", err.Error())
		return
	}
	rp.Runners[strings.ToLower(rn.Name)] = rn
	s.st.runner[rn.ID] = rn
	s.scaleSets().byRunner[rn.ID] = set
	writeJSON(w, http.StatusOK, obj{
		"runner":           obj{"id": rn.ID, "name": rn.Name, "runnerScaleSetId": set.ID},
		"encodedJITConfig": cfg,
	})
}

// agentOf finds a runner of the admin token's repository.
func (s *Server) agentOf(rp *repo, id int64) *runner {
	if rn := s.st.runner[id]; rn != nil && rn.Repo == rp {
		return rn
	}
	return nil
}

func (s *Server) agentJSON(rn *runner) obj {
	setID := 0
	if set := s.scaleSets().byRunner[rn.ID]; set != nil {
		setID = set.ID
	}
	return obj{"id": rn.ID, "name": rn.Name, "runnerScaleSetId": setID}
}

func (s *Server) handleGetAgent(w http.ResponseWriter, r *http.Request, rp *repo) {
	id, _ := strconv.ParseInt(r.PathValue("rid"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	rn := s.agentOf(rp, id)
	if rn == nil {
		writeActionsError(w, http.StatusNotFound, "AgentNotFoundException", "runner not found")
		return
	}
	writeJSON(w, http.StatusOK, s.agentJSON(rn))
}

func (s *Server) handleAgentByName(w http.ResponseWriter, r *http.Request, rp *repo) {
	name := r.URL.Query().Get("agentName")
	s.mu.Lock()
	defer s.mu.Unlock()
	list := []obj{}
	if rn := rp.Runners[strings.ToLower(name)]; rn != nil {
		list = append(list, s.agentJSON(rn))
	}
	writeJSON(w, http.StatusOK, obj{"count": len(list), "value": list})
}

func (s *Server) handleDeleteAgent(w http.ResponseWriter, r *http.Request, rp *repo) {
	id, _ := strconv.ParseInt(r.PathValue("rid"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	rn := s.agentOf(rp, id)
	if rn == nil {
		writeActionsError(w, http.StatusNotFound, "AgentNotFoundException", "runner not found")
		return
	}
	if rn.Busy {
		// As the REST endpoint: a busy runner cannot be removed.
		writeActionsError(w, http.StatusBadRequest, "AgentBusyException", "the runner is running a job")
		return
	}
	s.deleteRunner(rn)
	delete(s.scaleSets().byRunner, rn.ID)
	w.WriteHeader(http.StatusNoContent)
}

// SetScaleSetPollWait sets how long GetMessage holds a poll before 202
// (tests shorten it).
func (s *Server) SetScaleSetPollWait(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scaleSets().pollWait = d
}
