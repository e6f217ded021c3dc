package ghsim

import (
	"net/http"
	"strconv"
)

// The control API scripts a user and shows what happened. It is JSON over
// HTTP under /_ghsim/, unauthenticated, and never subject to faults.
func (s *Server) controlRoutes() {
	m := s.mux
	m.HandleFunc("POST /_ghsim/repos", s.ctlCreateRepo)
	m.HandleFunc("POST /_ghsim/users", s.ctlAddUser)
	m.HandleFunc("POST /_ghsim/repos/{owner}/{repo}/collaborators", s.ctlAddCollaborator)
	m.HandleFunc("POST /_ghsim/repos/{owner}/{repo}/pulls", s.ctlOpenPR)
	m.HandleFunc("POST /_ghsim/repos/{owner}/{repo}/pulls/{number}/push", s.ctlPush)
	m.HandleFunc("POST /_ghsim/repos/{owner}/{repo}/pulls/{number}/labels", s.ctlLabel)
	m.HandleFunc("DELETE /_ghsim/repos/{owner}/{repo}/pulls/{number}/labels/{name}", s.ctlUnlabel)
	m.HandleFunc("POST /_ghsim/repos/{owner}/{repo}/pulls/{number}/close", s.ctlClose)
	m.HandleFunc("POST /_ghsim/repos/{owner}/{repo}/hooks", s.ctlAddHook)
	m.HandleFunc("POST /_ghsim/repos/{owner}/{repo}/dispatch/{workflow}", s.ctlDispatch)
	m.HandleFunc("GET /_ghsim/repos/{owner}/{repo}/commits/{sha}", s.ctlCommit)
	m.HandleFunc("GET /_ghsim/repos/{owner}/{repo}/comments", s.ctlComments)
	m.HandleFunc("GET /_ghsim/repos/{owner}/{repo}/runs", s.ctlRuns)
	m.HandleFunc("GET /_ghsim/calls", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Calls()) })
	m.HandleFunc("GET /_ghsim/deliveries", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Deliveries()) })
	m.HandleFunc("GET /_ghsim/faults", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.faults.list()) })
	m.HandleFunc("DELETE /_ghsim/faults", func(w http.ResponseWriter, r *http.Request) { s.ClearFaults(); w.WriteHeader(http.StatusNoContent) })
	m.HandleFunc("POST /_ghsim/faults", s.ctlAddFault)
}

func ctlDone(w http.ResponseWriter, err error, ok any) {
	if err != nil {
		writeJSON(w, http.StatusBadRequest, obj{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, ok)
}

func fullName(r *http.Request) string { return r.PathValue("owner") + "/" + r.PathValue("repo") }

func prNumber(r *http.Request) int { n, _ := strconv.Atoi(r.PathValue("number")); return n }

func (s *Server) ctlCreateRepo(w http.ResponseWriter, r *http.Request) {
	var b RepoSpec
	if decodeBody(w, r, &b) {
		ctlDone(w, s.CreateRepo(b), obj{"full_name": b.Owner + "/" + b.Name})
	}
}

func (s *Server) ctlAddUser(w http.ResponseWriter, r *http.Request) {
	var b struct{ Login string }
	if decodeBody(w, r, &b) {
		s.AddUser(b.Login)
		ctlDone(w, nil, obj{"login": b.Login})
	}
}

func (s *Server) ctlAddCollaborator(w http.ResponseWriter, r *http.Request) {
	var b struct{ Login, Role string }
	if decodeBody(w, r, &b) {
		ctlDone(w, s.AddCollaborator(fullName(r), b.Login, b.Role), obj{"login": b.Login, "role": b.Role})
	}
}

func (s *Server) ctlOpenPR(w http.ResponseWriter, r *http.Request) {
	var b PRSpec
	if decodeBody(w, r, &b) {
		n, err := s.OpenPR(fullName(r), b)
		ctlDone(w, err, obj{"number": n})
	}
}

func (s *Server) ctlPush(w http.ResponseWriter, r *http.Request) {
	var b struct {
		SHA   string `json:"sha"`
		Force bool   `json:"force"` // a force push (head_ref_force_pushed)
	}
	if decodeBody(w, r, &b) {
		ctlDone(w, s.pushPR(fullName(r), prNumber(r), b.SHA, b.Force), obj{})
	}
}

func (s *Server) ctlLabel(w http.ResponseWriter, r *http.Request) {
	var b struct{ Label, User string }
	if decodeBody(w, r, &b) {
		ctlDone(w, s.LabelPR(fullName(r), prNumber(r), b.Label, b.User), obj{})
	}
}

func (s *Server) ctlUnlabel(w http.ResponseWriter, r *http.Request) {
	ctlDone(w, s.UnlabelPR(fullName(r), prNumber(r), r.PathValue("name"), r.URL.Query().Get("user")), obj{})
}

func (s *Server) ctlClose(w http.ResponseWriter, r *http.Request) {
	var b struct {
		User  string `json:"user"`
		Merge bool   `json:"merge"`
	}
	if decodeBody(w, r, &b) {
		ctlDone(w, s.ClosePR(fullName(r), prNumber(r), b.User, b.Merge), obj{})
	}
}

func (s *Server) ctlAddHook(w http.ResponseWriter, r *http.Request) {
	var b struct {
		URL    string   `json:"url"`
		Secret string   `json:"secret"`
		Events []string `json:"events"`
	}
	if decodeBody(w, r, &b) {
		id, err := s.AddHook(fullName(r), b.URL, b.Secret, b.Events)
		ctlDone(w, err, obj{"id": id})
	}
}

func (s *Server) ctlDispatch(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Inputs map[string]any `json:"inputs"`
		User   string         `json:"user"`
	}
	if decodeBody(w, r, &b) {
		id, err := s.Dispatch(fullName(r), r.PathValue("workflow"), b.Inputs, b.User)
		ctlDone(w, err, obj{"workflow_run_id": id})
	}
}

func (s *Server) ctlAddFault(w http.ResponseWriter, r *http.Request) {
	var b Fault
	if decodeBody(w, r, &b) {
		ctlDone(w, s.AddFault(b), s.faults.list())
	}
}

// ctlRepo runs f with the path's repository under s.mu.
func (s *Server) ctlRepo(w http.ResponseWriter, r *http.Request, f func(*repo) any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, err := s.repoByName(fullName(r))
	if err != nil {
		writeJSON(w, http.StatusNotFound, obj{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, f(rp))
}

func (s *Server) ctlCommit(w http.ResponseWriter, r *http.Request) {
	s.ctlRepo(w, r, func(rp *repo) any { return s.commitView(rp, resolveRef(rp, r.PathValue("sha"))) })
}

func (s *Server) ctlComments(w http.ResponseWriter, r *http.Request) {
	s.ctlRepo(w, r, func(rp *repo) any {
		var cs []*comment
		for _, c := range s.st.comments {
			if c.Repo == rp {
				cs = append(cs, c)
			}
		}
		sortByID(cs, func(c *comment) int64 { return c.ID })
		out := []any{}
		for _, c := range cs {
			out = append(out, s.commentJSON(c))
		}
		return out
	})
}

func (s *Server) ctlRuns(w http.ResponseWriter, r *http.Request) {
	s.ctlRepo(w, r, func(rp *repo) any { return s.runsView(rp) })
}
