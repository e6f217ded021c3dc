package ghsim

import (
	"net/http"
	"strconv"
)

func (s *Server) commentJSON(c *comment) obj {
	api := s.repoAPI(c.Repo)
	return obj{
		"id": c.ID, "node_id": nodeID("IssueComment", c.ID),
		"url":       api + "/issues/comments/" + strconv.FormatInt(c.ID, 10),
		"html_url":  s.base + "/" + c.Repo.FullName() + "/pull/" + strconv.Itoa(c.Number) + "#issuecomment-" + strconv.FormatInt(c.ID, 10),
		"issue_url": api + "/issues/" + strconv.Itoa(c.Number),
		"body":      c.Body, "user": s.userJSON(c.User),
		"created_at": ts(c.CreatedAt), "updated_at": ts(c.UpdatedAt),
		"author_association":       s.authorAssociation(c.Repo, c.User),
		"performed_via_github_app": nil,
	}
}

type commentBody struct {
	Body *string `json:"body"`
}

func (s *Server) handleCreateComment(w http.ResponseWriter, r *http.Request) {
	var b commentBody
	if !decodeBody(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, p, ok := s.lookupIssue(w, r, "number")
	if !ok {
		return
	}
	if b.Body == nil || *b.Body == "" {
		writeValidation(w, validationError{Resource: "IssueComment", Code: "missing_field", Field: "body"})
		return
	}
	c := &comment{ID: s.st.id(), Repo: rp, Number: p.Number, User: s.actor(r), Body: *b.Body, CreatedAt: s.now(), UpdatedAt: s.now()}
	s.st.comments[c.ID] = c
	p.Comments = append(p.Comments, c)
	w.Header().Set("Location", s.commentJSON(c)["url"].(string))
	writeJSON(w, http.StatusCreated, s.commentJSON(c))
}

func (s *Server) handleListComments(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p, ok := s.lookupIssue(w, r, "number")
	if !ok {
		return
	}
	out := []any{}
	for _, c := range p.Comments {
		out = append(out, s.commentJSON(c))
	}
	writeJSON(w, http.StatusOK, paginate(w, r, out))
}

// lookupComment resolves a comment id within the request's repository.
func (s *Server) lookupComment(w http.ResponseWriter, r *http.Request) (*comment, bool) {
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return nil, false
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	c := s.st.comments[id]
	if c == nil || c.Repo != rp {
		notFound(w)
		return nil, false
	}
	return c, true
}

func (s *Server) handleGetComment(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.lookupComment(w, r); ok {
		writeJSON(w, http.StatusOK, s.commentJSON(c))
	}
}

func (s *Server) handleEditComment(w http.ResponseWriter, r *http.Request) {
	var b commentBody
	if !decodeBody(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.lookupComment(w, r)
	if !ok {
		return
	}
	if b.Body == nil {
		writeValidation(w, validationError{Resource: "IssueComment", Code: "missing_field", Field: "body"})
		return
	}
	c.Body, c.UpdatedAt = *b.Body, s.now()
	writeJSON(w, http.StatusOK, s.commentJSON(c))
}
