package ghsim

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
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
	secret     string // one-time JIT secret
	session    string // set when redeemed
}

// JITConfig is what encoded_jit_config decodes to (base64 of this JSON).
// It is ghsim's own format: the stand-in runner needs the server URL, its
// runner id and a one-time secret.
type JITConfig struct {
	URL        string   `json:"ghsim_url"`
	RunnerID   int64    `json:"runner_id"`
	RunnerName string   `json:"runner_name"`
	Secret     string   `json:"secret"`
	Repo       string   `json:"repo"`
	Labels     []string `json:"labels"`
	WorkFolder string   `json:"work_folder"`
}

// DecodeJITConfig parses an encoded_jit_config.
func DecodeJITConfig(enc string) (JITConfig, error) {
	var c JITConfig
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return c, errf("decoding jit config: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, errf("parsing jit config: %w", err)
	}
	return c, nil
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
		WorkFolder: b.WorkFolder, Status: "offline", secret: randomHex(16),
	}
	rp.Runners[strings.ToLower(rn.Name)] = rn
	s.st.runner[rn.ID] = rn
	cfg, _ := json.Marshal(JITConfig{
		URL: s.base, RunnerID: rn.ID, RunnerName: rn.Name, Secret: rn.secret,
		Repo: rp.FullName(), Labels: rn.Labels, WorkFolder: rn.WorkFolder,
	})
	writeJSON(w, http.StatusCreated, obj{"runner": s.runnerJSON(rn), "encoded_jit_config": base64.StdEncoding.EncodeToString(cfg)})
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
	s.cond.Broadcast()
}
