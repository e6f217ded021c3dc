package lint

import (
	"github.com/rhysd/actionlint"
)

// runsOnRule: every job runs on ${{ matrix.<row>.labels }} over
// fromJSON(inputs.builders), nothing else.
//
// GitHub gives a queued job to any idle runner that carries all of the
// job's runs-on labels. The manager therefore registers each builder's
// runner with one label only, made for that builder at dispatch and sent
// in the builders input (see manager/trigger). A job that asks for
// anything else (a pool's labels, self-hosted, a literal matrix entry) is
// served by no buildfleet runner, and a runner that carried such labels
// could be taken by another workflow's job.
type runsOnRule struct {
	actionlint.RuleBase
}

const runsOnHow = "does not come from the builders input: use ${{ matrix.builder.labels }} with builder: ${{ fromJSON(inputs.builders) }} " +
	"(buildfleet's runners carry only the label the manager makes for each builder)"

func (r *runsOnRule) VisitJobPre(j *actionlint.Job) error {
	ro := j.RunsOn
	if ro == nil {
		return nil
	}
	if ro.LabelsExpr == nil {
		pos := ro.Group
		if len(ro.Labels) > 0 {
			r.Errorf(ro.Labels[0].Pos, "runs-on %s %s", labelsText(ro.Labels), runsOnHow)
			return nil
		}
		if pos != nil {
			r.Errorf(pos.Pos, "runs-on group %s %s", pos.Value, runsOnHow)
		}
		return nil
	}
	var m *actionlint.Matrix
	if j.Strategy != nil {
		m = j.Strategy.Matrix
	}
	if !fromBuilders(ro.LabelsExpr, m) {
		r.Errorf(ro.LabelsExpr.Pos, "runs-on %s %s", ro.LabelsExpr.Value, runsOnHow)
	}
	return nil
}

// fromBuilders tells whether s is ${{ matrix.<row>.labels }} and the
// matrix takes <row> (or all of itself) from the builders input.
func fromBuilders(s *actionlint.String, m *actionlint.Matrix) bool {
	phs := placeholders(s.Value)
	if !s.IsExpressionAssigned() || len(phs) != 1 || m == nil {
		return false
	}
	path, ok := chain(phs[0].node)
	if !ok || len(path) != 3 || path[0] != "matrix" || path[2] != "labels" {
		return false
	}
	if m.Expression != nil {
		return readsInput(m.Expression.Value, InputBuilders)
	}
	if mr, ok := m.Rows[path[1]]; ok && mr.Expression != nil && len(m.Rows) == 1 && m.Include == nil {
		return readsInput(mr.Expression.Value, InputBuilders)
	}
	return false
}

func labelsText(ls []*actionlint.String) string {
	out := "["
	for i, l := range ls {
		if i > 0 {
			out += ", "
		}
		out += l.Value
	}
	return out + "]"
}
