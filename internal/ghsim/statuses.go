package ghsim

import (
	"net/http"
	"strings"
	"unicode/utf8"
)

// resolveRef turns a commit ref (a SHA, or the default branch name) into a SHA.
func resolveRef(rp *repo, ref string) string {
	if strings.EqualFold(ref, rp.DefaultBranch) || ref == "heads/"+rp.DefaultBranch {
		return rp.HeadSHA
	}
	return ref
}

func (s *Server) statusJSON(rp *repo, st *status) obj {
	return obj{
		"url": s.repoAPI(rp) + "/statuses/" + st.SHA, "avatar_url": nil,
		"id": st.ID, "node_id": nodeID("StatusContext", st.ID), "state": st.State,
		"description": nullStr(st.Description), "target_url": nullStr(st.TargetURL),
		"context": st.Context, "created_at": ts(st.CreatedAt), "updated_at": ts(st.CreatedAt),
		"creator": s.userJSON(st.Creator),
	}
}

func (s *Server) handleCreateStatus(w http.ResponseWriter, r *http.Request) {
	var b struct {
		State       string  `json:"state"`
		TargetURL   *string `json:"target_url"`
		Description *string `json:"description"`
		Context     *string `json:"context"`
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
	switch b.State {
	case "error", "failure", "pending", "success":
	default:
		writeValidation(w, validationError{Resource: "Status", Code: "custom", Field: "state",
			Message: "state is not included in the list"})
		return
	}
	st := &status{ID: s.st.id(), SHA: r.PathValue("sha"), State: b.State, Context: "default", Creator: s.actor(r), CreatedAt: s.now()}
	if b.Context != nil && *b.Context != "" {
		st.Context = *b.Context
	}
	if b.TargetURL != nil {
		st.TargetURL = *b.TargetURL
	}
	if b.Description != nil {
		st.Description = *b.Description
		if utf8.RuneCountInString(st.Description) > 140 {
			writeValidation(w, validationError{Resource: "Status", Code: "custom", Field: "description",
				Message: "description is too long (maximum is 140 characters)"})
			return
		}
	}
	if len(st.SHA) != 40 {
		writeError(w, http.StatusUnprocessableEntity, "No commit found for SHA: "+st.SHA)
		return
	}
	rp.Statuses = append(rp.Statuses, st)
	writeJSON(w, http.StatusCreated, s.statusJSON(rp, st))
}

// statusesFor returns the statuses on sha, newest first, as GitHub lists them.
func statusesFor(rp *repo, sha string) []*status {
	var out []*status
	for i := len(rp.Statuses) - 1; i >= 0; i-- {
		if rp.Statuses[i].SHA == sha {
			out = append(out, rp.Statuses[i])
		}
	}
	return out
}

func (s *Server) handleListStatuses(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return
	}
	out := []any{}
	for _, st := range statusesFor(rp, resolveRef(rp, r.PathValue("ref"))) {
		out = append(out, s.statusJSON(rp, st))
	}
	writeJSON(w, http.StatusOK, paginate(w, r, out))
}

// handleCombinedStatus keeps the latest status per context and combines
// them: failure if any is error or failure, pending if any is pending or
// there are none, else success.
func (s *Server) handleCombinedStatus(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return
	}
	sha := resolveRef(rp, r.PathValue("ref"))
	seen := map[string]bool{}
	list := []any{}
	state := "success"
	for _, st := range statusesFor(rp, sha) {
		k := strings.ToLower(st.Context)
		if seen[k] {
			continue
		}
		seen[k] = true
		j := s.statusJSON(rp, st)
		delete(j, "creator")
		list = append(list, j)
		switch {
		case st.State == "error" || st.State == "failure":
			state = "failure"
		case st.State == "pending" && state != "failure":
			state = "pending"
		}
	}
	if len(list) == 0 {
		state = "pending"
	}
	api := s.repoAPI(rp)
	writeJSON(w, http.StatusOK, obj{
		"state": state, "statuses": list, "sha": sha, "total_count": len(list),
		"repository": s.repoJSON(rp), "commit_url": api + "/commits/" + sha,
		"url": api + "/commits/" + sha + "/status",
	})
}
