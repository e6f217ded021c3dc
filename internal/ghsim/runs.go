package ghsim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

type run struct {
	ID           int64
	Repo         *repo
	WF           *workflow
	WorkflowID   int64
	Number       int
	HeadBranch   string
	HeadSHA      string
	Status       string // queued, in_progress, completed
	Conclusion   string
	DisplayTitle string
	Actor        *user
	Inputs       map[string]any
	CreatedAt    time.Time
	UpdatedAt    time.Time
	StartedAt    time.Time
	Jobs         []*job
	pending      []*wfJob // jobs waiting for their needs
	results      map[string]string
	cancelled    bool
}

type job struct {
	ID              int64
	Run             *run
	Key             string
	Name            string
	Labels          []string
	Status          string // queued, in_progress, completed
	Conclusion      string
	Steps           []*jobStep
	Env             map[string]string
	TimeoutMinutes  int
	RunnerID        int64
	RunnerName      string
	CreatedAt       time.Time
	StartedAt       time.Time
	CompletedAt     time.Time
	Log             strings.Builder
	CancelRequested bool
	Simulate        *simulation
	ctx             exprCtx
	rawSteps        []wfStep
}

type jobStep struct {
	Number      int               `json:"number"`
	Name        string            `json:"name"`
	Run         string            `json:"run,omitempty"`
	Uses        string            `json:"uses,omitempty"`
	Shell       string            `json:"shell,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	Status      string            `json:"status"`
	Conclusion  string            `json:"conclusion,omitempty"`
	StartedAt   time.Time         `json:"started_at"`
	CompletedAt time.Time         `json:"completed_at"`
}

// simulation replaces step execution for load tests.
type simulation struct {
	Duration   string `json:"duration"`
	Conclusion string `json:"conclusion"`
}

// baseCtx is the expression context of a run, before job and matrix.
func (s *Server) baseCtx(ru *run) exprCtx {
	ev := map[string]any{}
	for k, v := range ru.Inputs {
		ev[k] = toStr(v)
	}
	env := map[string]any{}
	for k, v := range ru.WF.Env {
		env[k] = toStr(v)
	}
	inputs := map[string]any{}
	for k, v := range ru.Inputs {
		inputs[k] = v
	}
	return exprCtx{
		"inputs": inputs, "env": env, "vars": map[string]any{}, "secrets": map[string]any{},
		"needs": map[string]any{}, "matrix": nil, "strategy": map[string]any{},
		"github": map[string]any{
			"event_name": "workflow_dispatch", "event": map[string]any{"inputs": ev, "ref": "refs/heads/" + ru.HeadBranch},
			"ref": "refs/heads/" + ru.HeadBranch, "ref_name": ru.HeadBranch, "sha": ru.HeadSHA,
			"repository": ru.Repo.FullName(), "repository_owner": ru.Repo.Owner.Login,
			"run_id": strconv.FormatInt(ru.ID, 10), "run_number": strconv.Itoa(ru.Number), "run_attempt": "1",
			"actor": ru.Actor.Login, "triggering_actor": ru.Actor.Login, "workflow": ru.WF.Name,
			"server_url": s.base, "api_url": s.base,
		},
	}
}

// instantiate expands one workflow job into its matrix jobs.
func (s *Server) instantiate(ru *run, wj *wfJob) ([]*job, error) {
	c := s.baseCtx(ru)
	combos, err := expandMatrix(wj.Matrix, c)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", wj.Key, err)
	}
	var out []*job
	for _, cb := range combos {
		jc := exprCtx{}
		for k, v := range c {
			jc[k] = v
		}
		if cb != nil {
			mv := map[string]any{}
			for k, v := range cb {
				mv[k] = v
			}
			jc["matrix"] = mv
		}
		j := &job{ID: s.st.id(), Run: ru, Key: wj.Key, Status: "queued", CreatedAt: s.now(), Env: map[string]string{}}
		j.Name = wj.Key + matrixSuffix(cb)
		if wj.Name != "" {
			if j.Name, err = interpolateString(wj.Name, jc); err != nil {
				return nil, fmt.Errorf("job %s name: %w", wj.Key, err)
			}
		}
		if j.Labels, err = runsOnLabels(wj.RunsOn, jc); err != nil {
			return nil, fmt.Errorf("job %s runs-on: %w", wj.Key, err)
		}
		env := map[string]any{}
		for k, v := range c["env"].(map[string]any) {
			env[k] = v
			j.Env[k] = toStr(v)
		}
		for k, v := range wj.Env {
			sv, err := interpolateString(toStr(v), jc)
			if err != nil {
				return nil, fmt.Errorf("job %s env %s: %w", wj.Key, k, err)
			}
			j.Env[k], env[k] = sv, sv
		}
		jc["env"] = env
		if wj.TimeoutMinutes != nil {
			tv, err := interpolate(toStr(wj.TimeoutMinutes), jc)
			if err != nil {
				return nil, fmt.Errorf("job %s timeout-minutes: %w", wj.Key, err)
			}
			j.TimeoutMinutes = int(toNum(tv))
		}
		// Steps are evaluated when a runner takes the job, as on GitHub,
		// where the runner context (runner.os, ...) becomes known.
		j.ctx, j.rawSteps = jc, wj.Steps
		for i, st := range wj.Steps {
			j.Steps = append(j.Steps, &jobStep{Number: i + 1, Name: stepName(st), Status: "queued"})
		}
		out = append(out, j)
	}
	return out, nil
}

func stepName(st wfStep) string {
	switch {
	case st.Name != "":
		return st.Name
	case st.Uses != "":
		return "Run " + st.Uses
	}
	return "Run " + firstLine(st.Run)
}

// buildSteps evaluates j's steps for runner rn: if:, run: and env:.
func (s *Server) buildSteps(j *job, rn *runner) error {
	jc := exprCtx{}
	for k, v := range j.ctx {
		jc[k] = v
	}
	jc["runner"] = map[string]any{"name": rn.Name, "os": "Linux", "arch": "X64", "temp": "/tmp", "tool_cache": "/tmp", "environment": "self-hosted"}
	jc["steps"] = map[string]any{}
	jc["job"] = map[string]any{"status": "success"}
	var steps []*jobStep
	for i, st := range j.rawSteps {
		name := stepName(st)
		if st.Name != "" {
			if n, err := interpolateString(st.Name, jc); err == nil {
				name = n
			}
		}
		if st.If != "" {
			cond := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(st.If), "${{"), "}}")
			if v, err := evalExpr(cond, jc); err == nil && !truthy(v) {
				continue
			}
		}
		js := &jobStep{Number: i + 1, Name: name, Uses: st.Uses, Shell: st.Shell, Status: "queued", Env: map[string]string{}}
		var err error
		if js.Run, err = interpolateString(st.Run, jc); err != nil {
			return fmt.Errorf("job %s step %d run: %w", j.Key, i+1, err)
		}
		for k, v := range st.Env {
			if js.Env[k], err = interpolateString(toStr(v), jc); err != nil {
				return fmt.Errorf("job %s step %d env %s: %w", j.Key, i+1, k, err)
			}
		}
		steps = append(steps, js)
	}
	j.Steps = steps
	return nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// runsOnLabels evaluates runs-on: a string, a list, an expression giving
// either, or a mapping with labels.
func runsOnLabels(v any, c exprCtx) ([]string, error) {
	if s, ok := v.(string); ok {
		r, err := interpolate(s, c)
		if err != nil {
			return nil, err
		}
		v = r
	}
	if m, ok := v.(map[string]any); ok {
		v = m["labels"]
	}
	var out []string
	switch v := v.(type) {
	case string:
		out = []string{v}
	case []any:
		for _, e := range v {
			s, err := interpolateString(toStr(e), c)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no labels")
	}
	return out, nil
}

// labelsMatch reports whether a runner with have can take a job with want:
// it must carry all of them, compared case-insensitively.
func labelsMatch(want, have []string) bool {
	for _, w := range want {
		ok := false
		for _, h := range have {
			ok = ok || strings.EqualFold(w, h)
		}
		if !ok {
			return false
		}
	}
	return true
}
