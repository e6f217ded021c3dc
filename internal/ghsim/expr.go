package ghsim

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// This file is a small evaluator for GitHub Actions expressions (${{ }}):
// literals, property access (a.b, a['b'], a[0]), ! == != < <= > >= && ||,
// parentheses, and the functions fromJSON, toJSON, format, contains, join,
// startsWith, endsWith. Values are JSON values as encoding/json decodes them.

// exprCtx holds the named contexts (inputs, matrix, github, env, ...).
type exprCtx map[string]any

// evalExpr evaluates one expression (without the ${{ }}).
func evalExpr(src string, c exprCtx) (any, error) {
	p := &parser{src: src, ctx: c}
	p.next()
	v, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, fmt.Errorf("expression %q: unexpected %q", src, p.tok.text)
	}
	return v, nil
}

// interpolate expands every ${{ }} in s. A string that is exactly one
// expression keeps the expression's type (so runs-on and matrix can be
// arrays and objects); otherwise values are turned into strings.
func interpolate(s string, c exprCtx) (any, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "${{") && strings.HasSuffix(t, "}}") && strings.Count(t, "${{") == 1 {
		return evalExpr(t[3:len(t)-2], c)
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${{")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("unterminated expression in %q", s)
		}
		v, err := evalExpr(s[i+3:i+j], c)
		if err != nil {
			return nil, err
		}
		b.WriteString(s[:i])
		b.WriteString(toStr(v))
		s = s[i+j+2:]
	}
}

// interpolateString is interpolate with the result turned into a string.
func interpolateString(s string, c exprCtx) (string, error) {
	v, err := interpolate(s, c)
	if err != nil {
		return "", err
	}
	return toStr(v), nil
}

// toStr converts like GitHub: null is ”, numbers without trailing zeros,
// arrays and objects as 'Array' and 'Object'.
func toStr(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case int:
		return strconv.Itoa(v)
	case []any:
		return "Array"
	case map[string]any:
		return "Object"
	}
	return fmt.Sprint(v)
}

func toNum(v any) float64 {
	switch v := v.(type) {
	case nil:
		return 0
	case bool:
		if v {
			return 1
		}
		return 0
	case float64:
		return v
	case int:
		return float64(v)
	case string:
		s := strings.TrimSpace(v)
		if s == "" {
			return 0
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
		if n, err := strconv.ParseInt(s, 0, 64); err == nil {
			return float64(n)
		}
	}
	return math.NaN()
}

func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case float64:
		return v != 0 && !math.IsNaN(v)
	case int:
		return v != 0
	case string:
		return v != ""
	}
	return true
}

// looseEqual compares like GitHub: strings case-insensitively, mixed types
// by number, arrays and objects by identity (never equal here).
func looseEqual(a, b any) bool {
	switch av := a.(type) {
	case string:
		if bv, ok := b.(string); ok {
			return strings.EqualFold(av, bv)
		}
	case nil:
		if b == nil {
			return true
		}
	case []any, map[string]any:
		return false
	}
	if _, ok := b.([]any); ok {
		return false
	}
	if _, ok := b.(map[string]any); ok {
		return false
	}
	return toNum(a) == toNum(b)
}

func callFunc(name string, args []any) (any, error) {
	argn := func(n int) error {
		if len(args) != n {
			return fmt.Errorf("%s: want %d arguments, got %d", name, n, len(args))
		}
		return nil
	}
	switch strings.ToLower(name) {
	case "success", "always":
		return true, nil
	case "failure", "cancelled":
		return false, nil
	case "fromjson":
		if err := argn(1); err != nil {
			return nil, err
		}
		var v any
		if err := json.Unmarshal([]byte(toStr(args[0])), &v); err != nil {
			return nil, fmt.Errorf("fromJSON: %w", err)
		}
		return v, nil
	case "tojson":
		if err := argn(1); err != nil {
			return nil, err
		}
		b, err := json.MarshalIndent(args[0], "", "  ")
		return string(b), err
	case "contains":
		if err := argn(2); err != nil {
			return nil, err
		}
		if arr, ok := args[0].([]any); ok {
			for _, e := range arr {
				if looseEqual(e, args[1]) {
					return true, nil
				}
			}
			return false, nil
		}
		return strings.Contains(strings.ToLower(toStr(args[0])), strings.ToLower(toStr(args[1]))), nil
	case "startswith", "endswith":
		if err := argn(2); err != nil {
			return nil, err
		}
		a, b := strings.ToLower(toStr(args[0])), strings.ToLower(toStr(args[1]))
		if strings.ToLower(name) == "startswith" {
			return strings.HasPrefix(a, b), nil
		}
		return strings.HasSuffix(a, b), nil
	case "join":
		if len(args) < 1 || len(args) > 2 {
			return nil, fmt.Errorf("join: want 1 or 2 arguments")
		}
		sep := ","
		if len(args) == 2 {
			sep = toStr(args[1])
		}
		arr, ok := args[0].([]any)
		if !ok {
			return toStr(args[0]), nil
		}
		parts := make([]string, len(arr))
		for i, e := range arr {
			parts[i] = toStr(e)
		}
		return strings.Join(parts, sep), nil
	case "format":
		if len(args) < 1 {
			return nil, fmt.Errorf("format: want a format string")
		}
		f := toStr(args[0])
		var b strings.Builder
		for i := 0; i < len(f); i++ {
			switch {
			case strings.HasPrefix(f[i:], "{{"):
				b.WriteByte('{')
				i++
			case strings.HasPrefix(f[i:], "}}"):
				b.WriteByte('}')
				i++
			case f[i] == '{':
				j := strings.IndexByte(f[i:], '}')
				n, err := strconv.Atoi(f[i+1 : i+max(j, 1)])
				if j < 0 || err != nil || n+1 >= len(args) {
					return nil, fmt.Errorf("format: bad placeholder in %q", f)
				}
				b.WriteString(toStr(args[n+1]))
				i += j
			default:
				b.WriteByte(f[i])
			}
		}
		return b.String(), nil
	}
	return nil, fmt.Errorf("unknown function %s", name)
}
