package ghsim

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

type runner struct {
	ID         int64
	Repo       *repo
	Name       string
	Labels     []string
	GroupID    int64
	WorkFolder string
	Status     string // offline until the JIT config is redeemed, then online
	Busy       bool
	JobID      int64
	session    string // the listening session (message session, or the stand-in's)
	lastSeen   time.Time
	polls      int // long polls open (see silence.go)
}

func (s *Server) runnerJSON(rn *runner) obj {
	labels := []any{}
	for i, l := range rn.Labels {
		labels = append(labels, obj{"id": i + 1, "name": l, "type": "custom"})
	}
	return obj{
		"id": rn.ID, "name": rn.Name, "os": "unknown", "status": rn.Status, "busy": rn.Busy,
		"ephemeral": true, "labels": labels, "runner_group_id": rn.GroupID,
	}
}

func (s *Server) handleGenerateJIT(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name          *string  `json:"name"`
		RunnerGroupID *int64   `json:"runner_group_id"`
		Labels        []string `json:"labels"`
		WorkFolder    string   `json:"work_folder"`
	}
	if !decodeBody(w, r, &b) {
		return
	}
	// The key is taken outside the lock: making one takes tens of
	// milliseconds when none is ready.
	key, err := s.keys.take()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "generating the runner's key failed")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return
	}
	switch {
	case b.Name == nil || *b.Name == "":
		writeValidation(w, validationError{Resource: "Runner", Code: "missing_field", Field: "name"})
		return
	case b.RunnerGroupID == nil:
		writeValidation(w, validationError{Resource: "Runner", Code: "missing_field", Field: "runner_group_id"})
		return
	case len(b.Labels) < 1 || len(b.Labels) > 100:
		writeValidation(w, validationError{Resource: "Runner", Code: "invalid", Field: "labels"})
		return
	}
	if _, dup := rp.Runners[strings.ToLower(*b.Name)]; dup {
		writeError(w, http.StatusConflict, "Already exists - A runner with the name "+*b.Name+" already exists.")
		return
	}
	if b.WorkFolder == "" {
		b.WorkFolder = "_work"
	}
	rn := &runner{
		ID: s.st.id(), Repo: rp, Name: *b.Name, Labels: b.Labels, GroupID: *b.RunnerGroupID,
		WorkFolder: b.WorkFolder, Status: "offline",
	}
	cfg, err := s.encodeJIT(rn, key)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	rp.Runners[strings.ToLower(rn.Name)] = rn
	s.st.runner[rn.ID] = rn
	writeJSON(w, http.StatusCreated, obj{"runner": s.runnerJSON(rn), "encoded_jit_config": cfg})
}

func (s *Server) handleListRunners(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return
	}
	var list []*runner
	for _, rn := range rp.Runners {
		if n := r.URL.Query().Get("name"); n == "" || strings.EqualFold(n, rn.Name) {
			list = append(list, rn)
		}
	}
	sortByID(list, func(rn *runner) int64 { return rn.ID })
	out := []any{}
	for _, rn := range list {
		out = append(out, s.runnerJSON(rn))
	}
	writeJSON(w, http.StatusOK, obj{"total_count": len(out), "runners": paginate(w, r, out)})
}

func (s *Server) lookupRunner(w http.ResponseWriter, r *http.Request) (*runner, bool) {
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return nil, false
	}
	id, _ := strconv.ParseInt(r.PathValue("runner"), 10, 64)
	rn := s.st.runner[id]
	if rn == nil || rn.Repo != rp {
		notFound(w)
		return nil, false
	}
	return rn, true
}

func (s *Server) handleGetRunner(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rn, ok := s.lookupRunner(w, r); ok {
		writeJSON(w, http.StatusOK, s.runnerJSON(rn))
	}
}

// handleDeleteRunner removes a runner; a busy one is 422 like GitHub.
func (s *Server) handleDeleteRunner(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rn, ok := s.lookupRunner(w, r)
	if !ok {
		return
	}
	if rn.Busy {
		writeJSON(w, http.StatusUnprocessableEntity, obj{"message": "Bad request - Runner \"" + rn.Name + "\" is still running a job\"", "documentation_url": docsURL})
		return
	}
	s.deleteRunner(rn)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deleteRunner(rn *runner) {
	delete(rn.Repo.Runners, strings.ToLower(rn.Name))
	delete(s.st.runner, rn.ID)
	s.forgetRunner(rn.ID)
	s.cond.Broadcast()
}
