package ghsim

import (
	"fmt"
	"sort"
	"strings"
)

// expandMatrix evaluates strategy.matrix into its combinations, GitHub's
// way: the cartesian product of the keys (in key order), minus exclude,
// then each include entry extends every combination it matches on the
// original keys without overwriting them, or is added as a new combination.
// A nil matrix is one combination with no values (nil).
func expandMatrix(m any, c exprCtx) ([]map[string]any, error) {
	if m == nil {
		return []map[string]any{nil}, nil
	}
	if s, ok := m.(string); ok {
		v, err := interpolate(s, c)
		if err != nil {
			return nil, fmt.Errorf("matrix: %w", err)
		}
		m = v
	}
	mm, ok := m.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("matrix: want a mapping, got %T", m)
	}
	var keys []string
	for k := range mm {
		if k != "include" && k != "exclude" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	combos := []map[string]any{{}}
	for _, k := range keys {
		vals, err := matrixList(mm[k], c)
		if err != nil {
			return nil, fmt.Errorf("matrix.%s: %w", k, err)
		}
		var next []map[string]any
		for _, base := range combos {
			for _, v := range vals {
				n := map[string]any{}
				for bk, bv := range base {
					n[bk] = bv
				}
				n[k] = v
				next = append(next, n)
			}
		}
		combos = next
	}
	if len(keys) == 0 {
		combos = nil
	}
	excl, err := matrixList(mm["exclude"], c)
	if err != nil {
		return nil, fmt.Errorf("matrix.exclude: %w", err)
	}
	combos = filterExcluded(combos, excl)
	incl, err := matrixList(mm["include"], c)
	if err != nil {
		return nil, fmt.Errorf("matrix.include: %w", err)
	}
	orig := map[string]bool{}
	for _, k := range keys {
		orig[k] = true
	}
	for _, e := range incl {
		em, _ := e.(map[string]any)
		matched := false
		for _, cb := range combos {
			if !includeMatches(cb, em, orig) {
				continue
			}
			matched = true
			for k, v := range em {
				if !orig[k] {
					cb[k] = v
				}
			}
		}
		if !matched {
			n := map[string]any{}
			for k, v := range em {
				n[k] = v
			}
			combos = append(combos, n)
		}
	}
	if len(combos) == 0 {
		return nil, fmt.Errorf("matrix: no combinations")
	}
	return combos, nil
}

func matrixList(v any, c exprCtx) ([]any, error) {
	if s, ok := v.(string); ok {
		r, err := interpolate(s, c)
		if err != nil {
			return nil, err
		}
		v = r
	}
	switch v := v.(type) {
	case nil:
		return nil, nil
	case []any:
		return v, nil
	}
	return nil, fmt.Errorf("want a list, got %T", v)
}

func includeMatches(cb, e map[string]any, orig map[string]bool) bool {
	for k, v := range e {
		if orig[k] && fmt.Sprint(cb[k]) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}

func filterExcluded(combos []map[string]any, excl []any) []map[string]any {
	var out []map[string]any
	for _, cb := range combos {
		drop := false
		for _, e := range excl {
			em, _ := e.(map[string]any)
			all := len(em) > 0
			for k, v := range em {
				all = all && fmt.Sprint(cb[k]) == fmt.Sprint(v)
			}
			drop = drop || all
		}
		if !drop {
			out = append(out, cb)
		}
	}
	return out
}

// matrixSuffix is the " (a, b)" GitHub appends to a matrix job's default
// name: the values in key order; objects contribute their scalar values.
func matrixSuffix(cb map[string]any) string {
	if len(cb) == 0 {
		return ""
	}
	keys := make([]string, 0, len(cb))
	for k := range cb {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	var add func(v any)
	add = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			ks := make([]string, 0, len(v))
			for k := range v {
				ks = append(ks, k)
			}
			sort.Strings(ks)
			for _, k := range ks {
				add(v[k])
			}
		case []any:
			for _, e := range v {
				add(e)
			}
		default:
			parts = append(parts, toStr(v))
		}
	}
	for _, k := range keys {
		add(cb[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
