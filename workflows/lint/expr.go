package lint

import (
	"strings"
	"unicode/utf8"

	"github.com/rhysd/actionlint"
)

// placeholder is one ${{ }} of a string.
type placeholder struct {
	offset int                 // byte offset of "${{" in the string
	text   string              // "${{ … }}" as written
	node   actionlint.ExprNode // nil when it does not parse; actionlint reports that
}

// placeholders parses every ${{ }} of s with actionlint's expression parser.
func placeholders(s string) []placeholder {
	var out []placeholder
	for off := 0; ; {
		i := strings.Index(s[off:], "${{")
		if i < 0 {
			return out
		}
		start := off + i
		p := placeholder{offset: start, text: s[start:]}
		if j := strings.Index(s[start:], "}}"); j >= 0 {
			p.text = s[start : start+j+2]
		}
		if n, err := actionlint.NewExprParser().Parse(actionlint.NewExprLexer(s[start+3:])); err == nil {
			p.node = n
		}
		out = append(out, p)
		off = start + 3
	}
}

// refs returns the context paths an expression reads, each as its lower-case
// segments: inputs.sha → [inputs sha]; inputs['sha'] → [inputs sha]; an
// index that is not a string literal or a * becomes "*". Only the longest
// path of a chain is given (github.event.inputs.sha, not also github).
func refs(n actionlint.ExprNode) [][]string {
	if n == nil {
		return nil
	}
	var out [][]string
	actionlint.VisitExprNode(n, func(node, parent actionlint.ExprNode, entering bool) {
		if !entering || isReceiver(node, parent) {
			return
		}
		if p, ok := chain(node); ok {
			out = append(out, p)
		}
	})
	return out
}

func chain(n actionlint.ExprNode) ([]string, bool) {
	switch n := n.(type) {
	case *actionlint.VariableNode:
		return []string{strings.ToLower(n.Name)}, true
	case *actionlint.ObjectDerefNode:
		p, ok := chain(n.Receiver)
		return append(p, strings.ToLower(n.Property)), ok
	case *actionlint.ArrayDerefNode:
		p, ok := chain(n.Receiver)
		return append(p, "*"), ok
	case *actionlint.IndexAccessNode:
		p, ok := chain(n.Operand)
		if s, isStr := n.Index.(*actionlint.StringNode); isStr {
			return append(p, strings.ToLower(s.Value)), ok
		}
		return append(p, "*"), ok
	}
	return nil, false
}

// isReceiver reports whether node is the object that parent dereferences,
// i.e. not the end of a chain.
func isReceiver(node, parent actionlint.ExprNode) bool {
	switch p := parent.(type) {
	case *actionlint.ObjectDerefNode:
		return p.Receiver == node
	case *actionlint.ArrayDerefNode:
		return p.Receiver == node
	case *actionlint.IndexAccessNode:
		return p.Operand == node
	}
	return false
}

// inputRef reports whether a path reads a dispatch input, and which one: ""
// when it reads all of them (toJSON(inputs), toJSON(github.event)).
func inputRef(p []string) (string, bool) {
	name := func(i int) string {
		if len(p) > i && p[i] != "*" {
			return p[i]
		}
		return ""
	}
	switch {
	case len(p) >= 1 && p[0] == "inputs":
		return name(1), true
	case len(p) >= 3 && p[0] == "github" && p[1] == "event" && p[2] == "inputs":
		return name(3), true
	case len(p) <= 2 && len(p) >= 1 && p[0] == "github" && (len(p) == 1 || p[1] == "event" || p[1] == "*"):
		return "", true
	}
	return "", false
}

// readsInput reports whether s has a ${{ }} that reads the named input
// (any input when name is empty).
func readsInput(s string, name string) bool {
	for _, ph := range placeholders(s) {
		for _, p := range refs(ph.node) {
			if in, ok := inputRef(p); ok && (name == "" || in == name) {
				return true
			}
		}
	}
	return false
}

// source is a workflow file's text by line, to place findings inside block
// scalars, where actionlint only knows the position of the | or >.
type source []string

func newSource(src []byte) source {
	lines := strings.Split(string(src), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// pos returns the position of byte offset off of the string s in the file.
// It is exact for one-line scalars and literal (|) blocks, and falls back to
// the scalar's own position otherwise.
func (src source) pos(s *actionlint.String, off int) *actionlint.Pos {
	before := s.Value[:off]
	k := strings.Count(before, "\n")
	lineStart := strings.LastIndex(before, "\n") + 1
	valLine, _, _ := strings.Cut(s.Value[lineStart:], "\n")
	inLine := utf8.RuneCountInString(s.Value[lineStart:off])
	if s.Pos == nil || s.Pos.Line < 1 || s.Pos.Line > len(src) {
		return &actionlint.Pos{Line: 1, Col: 1}
	}
	first := src[s.Pos.Line-1]
	block := false
	if c := s.Pos.Col - 1; c >= 0 && c < len(first) {
		block = first[c] == '|' || first[c] == '>'
	}
	switch {
	case block && first[s.Pos.Col-1] == '|':
		n := s.Pos.Line + 1 + k // the block's text starts on the next line
		if n <= len(src) && strings.HasSuffix(src[n-1], valLine) {
			indent := utf8.RuneCountInString(src[n-1]) - utf8.RuneCountInString(valLine)
			return &actionlint.Pos{Line: n, Col: indent + inLine + 1}
		}
	case !block && k == 0 && !strings.Contains(s.Value, "\n"):
		col := s.Pos.Col + inLine
		if s.Quoted {
			col++
		}
		return &actionlint.Pos{Line: s.Pos.Line, Col: col}
	}
	return s.Pos
}
