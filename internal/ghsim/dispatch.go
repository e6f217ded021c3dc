package ghsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// dispatchError is a 4xx answer of a workflow dispatch.
type dispatchError struct {
	code int
	msg  string
}

func (e *dispatchError) Error() string { return e.msg }

// handleDispatch creates a run of the workflow file on the default branch.
func (s *Server) handleDispatch(w http.ResponseWriter, r *http.Request) {
	var raw map[string]json.RawMessage
	if !decodeBody(w, r, &raw) {
		return
	}
	var body struct {
		Ref              string         `json:"ref"`
		Inputs           map[string]any `json:"inputs"`
		ReturnRunDetails bool           `json:"return_run_details"`
	}
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &body); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	if _, ok := raw["return_run_details"]; ok && s.opts.LegacyDispatch {
		writeError(w, http.StatusBadRequest, "Invalid request.\n\n\"return_run_details\" is not a permitted key.")
		return
	}
	if body.Ref == "" {
		writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n\"ref\" wasn't supplied.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, ok := s.lookupRepo(w, r)
	if !ok {
		return
	}
	ru, err := s.dispatch(rp, r.PathValue("workflow"), body.Ref, body.Inputs, s.actor(r))
	var de *dispatchError
	switch {
	case err == nil:
	case asDispatchError(err, &de):
		writeError(w, de.code, de.msg)
		return
	default:
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	if !body.ReturnRunDetails {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, obj{"workflow_run_id": ru.ID, "run_url": s.runAPI(ru), "html_url": s.runHTML(ru)})
}

func asDispatchError(err error, de **dispatchError) bool {
	d, ok := err.(*dispatchError)
	*de = d
	return ok
}

// dispatch validates a workflow_dispatch and starts the run. Callers hold s.mu.
func (s *Server) dispatch(rp *repo, file, ref string, inputs map[string]any, actor *user) (*run, error) {
	wf, err := loadWorkflow(rp.WorkflowDir, file)
	if err != nil {
		return nil, &dispatchError{http.StatusNotFound, "Not Found"}
	}
	if !wf.Dispatch {
		return nil, &dispatchError{http.StatusUnprocessableEntity, "Workflow does not have 'workflow_dispatch' trigger"}
	}
	branch := strings.TrimPrefix(ref, "refs/heads/")
	if branch != rp.DefaultBranch {
		return nil, &dispatchError{http.StatusUnprocessableEntity, "No ref found for: " + ref}
	}
	vals, err := validateInputs(wf, inputs, s.opts.MaxDispatchInputs)
	if err != nil {
		return nil, err
	}
	if rp.WorkflowIDs[file] == 0 {
		rp.WorkflowIDs[file] = s.st.id()
	}
	rp.RunNumbers[file]++
	ru := &run{
		ID: s.st.id(), Repo: rp, WF: wf, WorkflowID: rp.WorkflowIDs[file], Number: rp.RunNumbers[file],
		HeadBranch: branch, HeadSHA: rp.HeadSHA, Status: "queued", Actor: actor, Inputs: vals,
		CreatedAt: s.now(), UpdatedAt: s.now(), DisplayTitle: wf.Name,
	}
	if wf.RunName != "" {
		t, err := interpolateString(wf.RunName, s.baseCtx(ru))
		if err != nil {
			return nil, &dispatchError{http.StatusUnprocessableEntity, "run-name: " + err.Error()}
		}
		ru.DisplayTitle = t
	}
	// Jobs that fail to expand would make GitHub fail the run at once; ghsim
	// answers 422 instead so a broken fixture is loud.
	if err := s.startRun(ru); err != nil {
		return nil, &dispatchError{http.StatusUnprocessableEntity, fmt.Sprintf("invalid workflow %s: %v", file, err)}
	}
	return ru, nil
}

// validateInputs checks inputs against the workflow's declared inputs and
// fills defaults, with GitHub's 422 messages.
func validateInputs(wf *workflow, in map[string]any, maxInputs int) (map[string]any, error) {
	if len(in) > maxInputs {
		return nil, &dispatchError{http.StatusUnprocessableEntity,
			fmt.Sprintf("you may only define up to %d `inputs` for a workflow_dispatch event", maxInputs)}
	}
	var unexpected []string
	for k := range in {
		if _, ok := wf.Inputs[k]; !ok {
			unexpected = append(unexpected, k)
		}
	}
	if len(unexpected) > 0 {
		sort.Strings(unexpected)
		b, _ := json.Marshal(unexpected)
		return nil, &dispatchError{http.StatusUnprocessableEntity, "Unexpected inputs provided: " + string(b)}
	}
	names := make([]string, 0, len(wf.Inputs))
	for k := range wf.Inputs {
		names = append(names, k)
	}
	sort.Strings(names)
	out := map[string]any{}
	for _, name := range names {
		def := wf.Inputs[name]
		v, ok := in[name]
		if !ok || v == nil {
			if def.Required && def.Default == nil {
				return nil, &dispatchError{http.StatusUnprocessableEntity, fmt.Sprintf("Required input '%s' not provided", name)}
			}
			v = def.Default
		}
		sv := toStr(v)
		switch def.Type {
		case "boolean":
			if sv != "true" && sv != "false" && sv != "" {
				return nil, &dispatchError{http.StatusUnprocessableEntity, fmt.Sprintf("Provided value '%s' for input '%s' is not a valid boolean", sv, name)}
			}
			out[name] = sv == "true"
		case "number":
			n := toNum(sv)
			if n != n {
				return nil, &dispatchError{http.StatusUnprocessableEntity, fmt.Sprintf("Provided value '%s' for input '%s' is not a valid number", sv, name)}
			}
			out[name] = n
		case "choice":
			if sv != "" && !slices.Contains(def.Options, sv) {
				return nil, &dispatchError{http.StatusUnprocessableEntity, fmt.Sprintf("Provided value '%s' for input '%s' not in the list of allowed values", sv, name)}
			}
			out[name] = sv
		default:
			out[name] = sv
		}
	}
	return out, nil
}

func (s *Server) runAPI(ru *run) string {
	return s.repoAPI(ru.Repo) + "/actions/runs/" + strconv.FormatInt(ru.ID, 10)
}

func (s *Server) runHTML(ru *run) string {
	return s.base + "/" + ru.Repo.FullName() + "/actions/runs/" + strconv.FormatInt(ru.ID, 10)
}
