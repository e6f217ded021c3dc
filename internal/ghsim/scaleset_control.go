package ghsim

import (
	"errors"
	"net/http"
	"strings"
)

// The control API's scale-set calls (no auth, never faulted), for
// scripts and the ghsim command: runner groups, duplicate messages,
// expired queue tokens, and the sets with their sessions and statistics.
func (s *Server) scaleSetControlRoutes() {
	m := s.mux
	m.HandleFunc("POST /_ghsim/runner-groups", func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Name string }
		if decodeBody(w, r, &b) {
			var err error
			if strings.TrimSpace(b.Name) == "" {
				err = errors.New("name must not be empty")
			}
			id := int64(0)
			if err == nil {
				id = s.AddRunnerGroup(b.Name)
			}
			ctlDone(w, err, obj{"id": id, "name": b.Name})
		}
	})
	m.HandleFunc("POST /_ghsim/scalesets/duplicate-messages", func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Count int }
		if decodeBody(w, r, &b) {
			s.DuplicateScaleSetMessages(b.Count)
			ctlDone(w, nil, obj{"count": b.Count})
		}
	})
	m.HandleFunc("POST /_ghsim/scalesets/expire-tokens", func(w http.ResponseWriter, r *http.Request) {
		s.ExpireScaleSetTokens()
		ctlDone(w, nil, obj{})
	})
	m.HandleFunc("GET /_ghsim/scalesets", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		list := []obj{}
		for _, set := range s.scaleSets().sets {
			o := s.scaleSetJSON(set)
			o["repository"], o["sessionId"] = set.Repo.FullName(), nil
			if set.session != nil {
				o["sessionId"] = set.session.ID
			}
			list = append(list, o)
		}
		writeJSON(w, http.StatusOK, list)
	})
}
