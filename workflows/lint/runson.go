package lint

import (
	"fmt"
	"strings"

	"github.com/rhysd/actionlint"

	"github.com/buildfleet/buildfleet/config"
)

// runsOnRule: GitHub gives a job to a runner that carries all of its
// runs-on labels (compared case-insensitively); a label set that no pool's
// runners carry stays queued until GitHub drops it a day later. Every label
// set a job can ask for must therefore be a subset of some pool's labels.
//
// Label sets are found where they are written: literal runs-on labels, or
// ${{ matrix.<row>… }} over literal matrix entries. ${{ matrix.<row>.labels }}
// over fromJSON(inputs.builders) takes the label sets the manager sends,
// which are the pools' own, so it is served by construction.
type runsOnRule struct {
	actionlint.RuleBase
	pools []config.Pool
}

// labelSet is one combination of labels a job may request, and where it is
// written.
type labelSet struct {
	labels []string
	pos    *actionlint.Pos
	entry  bool // pos is a matrix entry, the place to fix
}

// maxSets bounds the combinations a runs-on list of several matrix
// expressions can produce.
const maxSets = 1024

func (r *runsOnRule) VisitJobPre(j *actionlint.Job) error {
	ro := j.RunsOn
	if ro == nil {
		return nil
	}
	var m *actionlint.Matrix
	if j.Strategy != nil {
		m = j.Strategy.Matrix
	}
	var sets []labelSet
	switch {
	case ro.LabelsExpr != nil:
		s, err := r.fromMatrix(ro.LabelsExpr, m)
		if err != nil {
			r.Error(ro.LabelsExpr.Pos, err.Error())
			return nil
		}
		sets = s
	default:
		sets = []labelSet{{}}
		for _, l := range ro.Labels {
			alts := []labelSet{{labels: []string{l.Value}, pos: l.Pos}}
			if l.ContainsExpression() {
				var err error
				if alts, err = r.fromMatrix(l, m); err != nil {
					r.Error(l.Pos, err.Error())
					return nil
				}
			}
			var next []labelSet
			for _, s := range sets {
				for _, a := range alts {
					c := labelSet{labels: append(append([]string(nil), s.labels...), a.labels...), pos: s.pos, entry: s.entry}
					if c.pos == nil || (a.entry && !c.entry) {
						c.pos, c.entry = a.pos, a.entry // point at the matrix entry when there is one
					}
					next = append(next, c)
				}
			}
			if len(next) > maxSets {
				r.Errorf(l.Pos, "runs-on expands to more than %d label sets; buildfleet does not check it", maxSets)
				return nil
			}
			sets = next
		}
	}
	for _, s := range sets {
		if msg := r.unserved(s.labels); msg != "" {
			r.Error(s.pos, msg)
		}
	}
	return nil
}

// fromMatrix resolves a runs-on expression to the label sets it can take.
func (r *runsOnRule) fromMatrix(s *actionlint.String, m *actionlint.Matrix) ([]labelSet, error) {
	cannot := fmt.Errorf("runs-on %s cannot be checked against the pools: use literal labels, literal matrix entries, or ${{ matrix.builder.labels }} with builder: ${{ fromJSON(inputs.builders) }}", s.Value)
	phs := placeholders(s.Value)
	if !s.IsExpressionAssigned() || len(phs) != 1 {
		return nil, cannot
	}
	path, ok := chain(phs[0].node)
	if !ok || len(path) < 2 || path[0] != "matrix" || path[1] == "*" {
		return nil, cannot
	}
	if m == nil {
		return nil, fmt.Errorf("runs-on %s reads the matrix, but the job has no strategy.matrix", s.Value)
	}
	row, rest := path[1], path[2:]
	managed := func(expr *actionlint.String) ([]labelSet, error) {
		if !readsInput(expr.Value, InputBuilders) {
			return nil, cannot
		}
		if len(rest) != 1 || rest[0] != "labels" {
			return nil, fmt.Errorf("runs-on %s: the builders input holds {\"name\", \"labels\"} objects; use ${{ matrix.%s.labels }}", s.Value, row)
		}
		// What the manager sends: the labels of pools of the config.
		var out []labelSet
		for _, p := range r.pools {
			out = append(out, labelSet{labels: p.Labels, pos: s.Pos})
		}
		return out, nil
	}
	if m.Expression != nil {
		return managed(m.Expression)
	}
	var out []labelSet
	found := false
	if mr, ok := m.Rows[row]; ok {
		found = true
		if mr.Expression != nil {
			return managed(mr.Expression)
		}
		for _, v := range mr.Values {
			ls, err := literalLabels(v, rest, s)
			if err != nil {
				return nil, err
			}
			out = append(out, ls)
		}
	}
	if m.Include != nil {
		if m.Include.Expression != nil {
			return managed(m.Include.Expression)
		}
		for _, c := range m.Include.Combinations {
			if a, ok := c.Assigns[row]; ok {
				found = true
				ls, err := literalLabels(a.Value, rest, s)
				if err != nil {
					return nil, err
				}
				out = append(out, ls)
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("runs-on %s: the matrix has no %q", s.Value, row)
	}
	return out, nil
}

// literalLabels follows the rest of a matrix path into one entry and returns
// the label or labels found there.
func literalLabels(v actionlint.RawYAMLValue, rest []string, s *actionlint.String) (labelSet, error) {
	for _, k := range rest {
		o, ok := v.(*actionlint.RawYAMLObject)
		if !ok {
			return labelSet{}, fmt.Errorf("runs-on %s: matrix entry %s has no %q", s.Value, v.String(), k)
		}
		if v, ok = o.Props[k]; !ok {
			return labelSet{}, fmt.Errorf("runs-on %s: matrix entry %s has no %q", s.Value, o.String(), k)
		}
	}
	literal := func(e actionlint.RawYAMLValue) (string, error) {
		str, ok := e.(*actionlint.RawYAMLString)
		if !ok || actionlint.ContainsExpression(str.Value) {
			return "", fmt.Errorf("runs-on %s: matrix value %s is not a literal label; buildfleet cannot check it against the pools", s.Value, e.String())
		}
		return str.Value, nil
	}
	ls := labelSet{pos: v.Pos(), entry: true}
	if a, ok := v.(*actionlint.RawYAMLArray); ok {
		for _, e := range a.Elems {
			l, err := literal(e)
			if err != nil {
				return labelSet{}, err
			}
			ls.labels = append(ls.labels, l)
		}
		return ls, nil
	}
	l, err := literal(v)
	if err != nil {
		return labelSet{}, err
	}
	ls.labels = []string{l}
	return ls, nil
}

// unserved returns why no pool serves a label set, or "" when one does.
func (r *runsOnRule) unserved(labels []string) string {
	var best string
	var bestMissing []string
	for _, p := range r.pools {
		var missing []string
		for _, l := range labels {
			if !containsFold(p.Labels, l) {
				missing = append(missing, l)
			}
		}
		if len(missing) == 0 {
			return ""
		}
		if best == "" || len(missing) < len(bestMissing) {
			best, bestMissing = p.Name, missing
		}
	}
	if best == "" {
		return fmt.Sprintf("runs-on labels [%s]: the config has no pools", strings.Join(labels, ", "))
	}
	return fmt.Sprintf("runs-on labels [%s] are served by no pool (closest: pool %q lacks %s)",
		strings.Join(labels, ", "), best, quoteAll(bestMissing))
}

func containsFold(list []string, s string) bool {
	for _, l := range list {
		if strings.EqualFold(l, s) {
			return true
		}
	}
	return false
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
