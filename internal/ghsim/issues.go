package ghsim

import (
	"net/http"
	"strconv"
	"strings"
)

// labelColor is the color GitHub gives labels created implicitly.
const labelColor = "ededed"

// repoLabel returns the repository's label called name (case-insensitive),
// creating it as GitHub does when an unknown label is added to an issue.
func (s *Server) repoLabel(rp *repo, name string) *label {
	k := strings.ToLower(name)
	if l := rp.Labels[k]; l != nil {
		return l
	}
	l := &label{ID: s.st.id(), Name: name, Color: labelColor}
	rp.Labels[k] = l
	return l
}

// addLabel labels p as actor, records the event and emits
// pull_request.labeled. Adding a label it has already is a no-op.
func (s *Server) addLabel(rp *repo, p *pull, name string, actor *user) {
	l := s.repoLabel(rp, name)
	for _, have := range p.Labels {
		if have == l {
			return
		}
	}
	p.Labels = append(p.Labels, l)
	p.UpdatedAt = s.now()
	p.Events = append(p.Events, &issueEvent{ID: s.st.id(), Event: "labeled", Actor: actor, Label: l, CreatedAt: s.now()})
	s.emitPull(rp, p, "labeled", actor, obj{"label": s.labelJSON(rp, l)})
}

// removeLabel unlabels p; it reports false when p did not have the label.
func (s *Server) removeLabel(rp *repo, p *pull, name string, actor *user) bool {
	for i, l := range p.Labels {
		if strings.EqualFold(l.Name, name) {
			p.Labels = append(p.Labels[:i:i], p.Labels[i+1:]...)
			p.UpdatedAt = s.now()
			p.Events = append(p.Events, &issueEvent{ID: s.st.id(), Event: "unlabeled", Actor: actor, Label: l, CreatedAt: s.now()})
			s.emitPull(rp, p, "unlabeled", actor, obj{"label": s.labelJSON(rp, l)})
			return true
		}
	}
	return false
}

func (s *Server) handleListLabels(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, p, ok := s.lookupIssue(w, r, "number")
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, paginate(w, r, s.labelsJSON(rp, p.Labels)))
}

// handleAddLabels accepts {"labels": [...]}, a bare array of names, or
// {"labels": [{"name": ...}]}, as GitHub does.
func (s *Server) handleAddLabels(w http.ResponseWriter, r *http.Request) {
	var body any
	if !decodeBody(w, r, &body) {
		return
	}
	var names []string
	collect := func(v any) {
		for _, e := range asSlice(v) {
			switch e := e.(type) {
			case string:
				names = append(names, e)
			case map[string]any:
				if n, ok := e["name"].(string); ok {
					names = append(names, n)
				}
			}
		}
	}
	switch b := body.(type) {
	case []any:
		collect(b)
	case map[string]any:
		collect(b["labels"])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, p, ok := s.lookupIssue(w, r, "number")
	if !ok {
		return
	}
	if len(names) == 0 {
		writeValidation(w, validationError{Resource: "Label", Code: "missing_field", Field: "labels"})
		return
	}
	actor := s.actor(r)
	for _, n := range names {
		s.addLabel(rp, p, n, actor)
	}
	writeJSON(w, http.StatusOK, s.labelsJSON(rp, p.Labels))
}

func (s *Server) handleRemoveLabel(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, p, ok := s.lookupIssue(w, r, "number")
	if !ok {
		return
	}
	if !s.removeLabel(rp, p, r.PathValue("name"), s.actor(r)) {
		writeError(w, http.StatusNotFound, "Label does not exist")
		return
	}
	writeJSON(w, http.StatusOK, s.labelsJSON(rp, p.Labels))
}

func (s *Server) handleIssueEvents(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, p, ok := s.lookupIssue(w, r, "number")
	if !ok {
		return
	}
	out := []any{}
	for _, e := range p.Events {
		j := obj{
			"id": e.ID, "node_id": nodeID(eventNodeType(e.Event), e.ID),
			"url":   s.repoAPI(rp) + "/issues/events/" + strconv.FormatInt(e.ID, 10),
			"actor": s.userJSON(e.Actor), "event": e.Event, "commit_id": nil, "commit_url": nil,
			"created_at": ts(e.CreatedAt), "performed_via_github_app": nil,
		}
		if e.Label != nil {
			j["label"] = obj{"name": e.Label.Name, "color": e.Label.Color}
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, paginate(w, r, out))
}

// eventNodeType is the GraphQL type GitHub names an issue event's node
// after (labeled → LabeledEvent, head_ref_force_pushed →
// HeadRefForcePushedEvent).
func eventNodeType(event string) string {
	var b strings.Builder
	for _, w := range strings.Split(event, "_") {
		if w != "" {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String() + "Event"
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}
