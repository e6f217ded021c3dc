package lint

import (
	"regexp"
	"slices"
	"strings"

	"github.com/rhysd/actionlint"

	"github.com/buildfleet/buildfleet/config"
)

// Rule names, shown in brackets after each finding's message.
const (
	RuleInputs    = "buildfleet-inputs"
	RuleRunName   = "buildfleet-run-name"
	RuleRunsOn    = "buildfleet-runs-on"
	RuleInjection = "buildfleet-injection"
	RuleSHAPin    = "buildfleet-sha-pin"
	RuleJobName   = "buildfleet-job-name"
)

// newRules returns buildfleet's checks as actionlint rules, so that they
// walk actionlint's syntax tree (with positions) and their findings are
// sorted and printed with actionlint's own.
func newRules(cfg config.Config, src []byte) []actionlint.Rule {
	s := newSource(src)
	return []actionlint.Rule{
		&inputsRule{RuleBase: actionlint.NewRuleBase(RuleInputs, "workflow_dispatch inputs match what the manager sends"), cfg: cfg},
		&runNameRule{RuleBase: actionlint.NewRuleBase(RuleRunName, "run-name carries the request id")},
		&runsOnRule{RuleBase: actionlint.NewRuleBase(RuleRunsOn, "runs-on comes from the builders input")},
		&injectionRule{RuleBase: actionlint.NewRuleBase(RuleInjection, "inputs reach run: scripts through env only"), src: s},
		&pinRule{RuleBase: actionlint.NewRuleBase(RuleSHAPin, "code is checked out at the sha input")},
		&jobNameRule{RuleBase: actionlint.NewRuleBase(RuleJobName, "jobs over the builders input are named after the pool")},
	}
}

var fileStart = &actionlint.Pos{Line: 1, Col: 1}

// inputsRule: the manager sends exactly DispatchInputs, as strings. A
// missing one breaks the dispatch; an extra required one without default
// makes GitHub refuse it.
type inputsRule struct {
	actionlint.RuleBase
	cfg config.Config
}

func (r *inputsRule) VisitWorkflowPre(w *actionlint.Workflow) error {
	var wd *actionlint.WorkflowDispatchEvent
	for _, e := range w.On {
		if d, ok := e.(*actionlint.WorkflowDispatchEvent); ok {
			wd = d
		}
	}
	all := strings.Join(DispatchInputs[:], ", ")
	if wd == nil {
		r.Errorf(fileStart, "the workflow has no workflow_dispatch trigger: the manager dispatches it with inputs %s", all)
		return nil
	}
	for _, name := range DispatchInputs {
		if _, ok := wd.Inputs[name]; !ok {
			r.Errorf(wd.Pos, "workflow_dispatch input %q is missing: the manager sends %s", name, all)
		}
	}
	for name, in := range wd.Inputs {
		if slices.Contains(DispatchInputs[:], name) {
			continue
		}
		if in.Required != nil && in.Required.Value && in.Default == nil {
			r.Errorf(in.Name.Pos, "workflow_dispatch input %q is required but the manager never sends it (it sends %s): give it a default or make it optional", in.Name.Value, all)
		}
	}
	if in, ok := wd.Inputs[InputTier]; ok && in.Type == actionlint.WorkflowDispatchEventInputTypeChoice {
		for _, t := range r.cfg.Tiers() {
			if !slices.ContainsFunc(in.Options, func(o *actionlint.String) bool { return o.Value == t }) {
				r.Errorf(in.Name.Pos, "workflow_dispatch input \"tier\" is a choice without option %q, a tier of the config's pools", t)
			}
		}
	}
	return nil
}

// runNameRule: the manager finds the run it dispatched by the request id
// in the run name.
type runNameRule struct{ actionlint.RuleBase }

func (r *runNameRule) VisitWorkflowPre(w *actionlint.Workflow) error {
	switch {
	case w.RunName == nil:
		r.Error(fileStart, "run-name is missing: it must contain ${{ inputs.request_id }}, by which the manager finds the run it dispatched")
	case !readsInput(w.RunName.Value, InputRequestID):
		r.Error(w.RunName.Pos, "run-name does not contain ${{ inputs.request_id }}: the manager finds the run it dispatched by the request id in its name")
	}
	return nil
}

// matrixRows tells, for each row of a job's matrix, whether its values come
// from the dispatch inputs (tainted: not to be put in a script) and whether
// they are the builders input (the manager's pools). "*" stands for every
// row, when the whole matrix or its include list is one expression.
type rowSource struct{ input, builders bool }

func matrixRows(j *actionlint.Job) map[string]rowSource {
	out := map[string]rowSource{}
	if j.Strategy == nil || j.Strategy.Matrix == nil {
		return out
	}
	m := j.Strategy.Matrix
	add := func(row, s string) {
		src := out[row]
		src.input = src.input || readsInput(s, "")
		src.builders = src.builders || readsInput(s, InputBuilders)
		out[row] = src
	}
	if m.Expression != nil {
		add("*", m.Expression.Value)
	}
	for name, row := range m.Rows {
		if row.Expression != nil {
			add(name, row.Expression.Value)
		}
		for _, v := range row.Values {
			for _, s := range rawStrings(v) {
				add(name, s)
			}
		}
	}
	if m.Include != nil {
		if m.Include.Expression != nil {
			add("*", m.Include.Expression.Value)
		}
		for _, c := range m.Include.Combinations {
			for name, a := range c.Assigns {
				for _, s := range rawStrings(a.Value) {
					add(name, s)
				}
			}
		}
	}
	return out
}

func rawStrings(v actionlint.RawYAMLValue) []string {
	switch v := v.(type) {
	case *actionlint.RawYAMLString:
		return []string{v.Value}
	case *actionlint.RawYAMLArray:
		var out []string
		for _, e := range v.Elems {
			out = append(out, rawStrings(e)...)
		}
		return out
	case *actionlint.RawYAMLObject:
		var out []string
		for _, e := range v.Props {
			out = append(out, rawStrings(e)...)
		}
		return out
	}
	return nil
}

// injectionRule: ${{ }} is expanded into the script text before the shell
// sees it, so an input such as `x"; curl … | sh; "` would run. Inputs go
// through env: and are read as "$VAR".
type injectionRule struct {
	actionlint.RuleBase
	src source
}

func (r *injectionRule) VisitJobPre(j *actionlint.Job) error {
	rows := matrixRows(j)
	for _, st := range j.Steps {
		run, ok := st.Exec.(*actionlint.ExecRun)
		if !ok || run.Run == nil {
			continue
		}
		for _, ph := range placeholders(run.Run.Value) {
			if what := tainted(refs(ph.node), rows); what != "" {
				r.Errorf(r.src.pos(run.Run, ph.offset), "%s in run: puts %s into the shell script (script injection): pass it through env: and use \"$VAR\"", ph.text, what)
			}
		}
	}
	return nil
}

// tainted describes the first path that reads a dispatch input, directly or
// through a matrix row made from inputs, or returns "".
func tainted(paths [][]string, rows map[string]rowSource) string {
	for _, p := range paths {
		if name, ok := inputRef(p); ok {
			if name == "" {
				return "the dispatch inputs"
			}
			return "the " + name + " input"
		}
		if p[0] != "matrix" {
			continue
		}
		for row, src := range rows {
			if src.input && (row == "*" || len(p) == 1 || p[1] == row || p[1] == "*") {
				return "a matrix value made from the dispatch inputs"
			}
		}
	}
	return ""
}

// pinRule: a job that fetches or checks out code must check out exactly the
// sha input, through an environment variable (git checkout/switch/reset
// "$SHA") or actions/checkout's ref. A job that fetches nothing builds no PR
// code and needs no pin (the demo workflow).
type pinRule struct {
	actionlint.RuleBase
	wf *actionlint.Workflow
}

var (
	fetchRE = regexp.MustCompile(`\bgit\b[^;&|]*?\b(clone|fetch|pull|checkout|switch)\b|\bgh\s+pr\s+checkout\b`)
	pinRE   = regexp.MustCompile(`\bgit\b[^;&|]*?\b(checkout|switch|reset)\b(.*)`)
	varRE   = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)
)

func (r *pinRule) VisitWorkflowPre(w *actionlint.Workflow) error {
	r.wf = w
	return nil
}

func (r *pinRule) VisitJobPre(j *actionlint.Job) error {
	var fetch *actionlint.Step
	pinned := false
	for _, st := range j.Steps {
		switch e := st.Exec.(type) {
		case *actionlint.ExecAction:
			if e.Uses == nil || !isCheckoutAction(e.Uses.Value) {
				continue
			}
			if fetch == nil {
				fetch = st
			}
			if ref, ok := e.Inputs["ref"]; ok && ref.Value != nil && readsInput(ref.Value.Value, InputSHA) {
				pinned = true
			}
		case *actionlint.ExecRun:
			if e.Run == nil {
				continue
			}
			for _, line := range strings.Split(e.Run.Value, "\n") {
				if fetch == nil && fetchRE.MatchString(line) {
					fetch = st
				}
				m := pinRE.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				if readsInput(m[2], InputSHA) {
					pinned = true // flagged as injection, but pinned all the same
				}
				for _, v := range varRE.FindAllStringSubmatch(m[2], -1) {
					if val := r.env(v[1], st, j); val != nil && readsInput(val.Value, InputSHA) {
						pinned = true
					}
				}
			}
		}
	}
	if fetch != nil && !pinned {
		id := ""
		if j.ID != nil {
			id = j.ID.Value
		}
		r.Errorf(fetch.Pos, "job %q fetches code but never checks out the sha input: add git checkout --detach \"$SHA\" with SHA: ${{ inputs.sha }} in env:, or actions/checkout with ref: ${{ inputs.sha }}", id)
	}
	return nil
}

// env finds the value of an environment variable as the step sees it: step,
// then job, then workflow env.
func (r *pinRule) env(name string, st *actionlint.Step, j *actionlint.Job) *actionlint.String {
	var wfEnv *actionlint.Env
	if r.wf != nil {
		wfEnv = r.wf.Env
	}
	for _, e := range []*actionlint.Env{st.Env, j.Env, wfEnv} {
		if e == nil {
			continue
		}
		for _, v := range e.Vars {
			if v.Name != nil && strings.EqualFold(v.Name.Value, name) {
				return v.Value
			}
		}
	}
	return nil
}

func isCheckoutAction(uses string) bool {
	name, _, _ := strings.Cut(uses, "@")
	return strings.EqualFold(name, "actions/checkout")
}

// jobNameRule: the manager maps each job of a run to its pool by the job
// name (and labels), so a job over the builders input must be named exactly
// ${{ matrix.<row>.name }}.
type jobNameRule struct{ actionlint.RuleBase }

func (r *jobNameRule) VisitJobPre(j *actionlint.Job) error {
	for row, src := range matrixRows(j) {
		if !src.builders || row == "*" {
			continue
		}
		want := []string{"matrix", row, "name"}
		ok := false
		if j.Name != nil && j.Name.IsExpressionAssigned() {
			for _, ph := range placeholders(j.Name.Value) {
				ps := refs(ph.node)
				ok = len(ps) == 1 && slices.Equal(ps[0], want)
			}
		}
		if !ok {
			pos := j.Pos
			if j.Name != nil {
				pos = j.Name.Pos
			} else if j.ID != nil {
				pos = j.ID.Pos
			}
			r.Errorf(pos, "the job's name must be ${{ matrix.%s.name }}: the manager maps each job to its pool by that name", row)
		}
	}
	return nil
}
