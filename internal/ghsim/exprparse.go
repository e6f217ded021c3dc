package ghsim

import (
	"fmt"
	"strings"
)

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tNum
	tStr
	tOp
)

type token struct {
	kind tokKind
	text string
}

// parser is a recursive-descent evaluator: it computes values as it parses.
type parser struct {
	src string
	pos int
	tok token
	ctx exprCtx
	err error
}

func (p *parser) next() {
	s := p.src
	for p.pos < len(s) && strings.IndexByte(" \t\r\n", s[p.pos]) >= 0 {
		p.pos++
	}
	if p.pos >= len(s) {
		p.tok = token{kind: tEOF}
		return
	}
	c := s[p.pos]
	start := p.pos
	switch {
	case c == '\'':
		var b strings.Builder
		p.pos++
		for p.pos < len(s) {
			if s[p.pos] == '\'' {
				if p.pos+1 < len(s) && s[p.pos+1] == '\'' {
					b.WriteByte('\'')
					p.pos += 2
					continue
				}
				break
			}
			b.WriteByte(s[p.pos])
			p.pos++
		}
		if p.pos >= len(s) {
			p.err = fmt.Errorf("unterminated string in %q", s)
		}
		p.pos++
		p.tok = token{kind: tStr, text: b.String()}
	case c >= '0' && c <= '9' || c == '-' && p.pos+1 < len(s) && s[p.pos+1] >= '0' && s[p.pos+1] <= '9':
		p.pos++
		for p.pos < len(s) && strings.IndexByte("0123456789.xXabcdefABCDEF", s[p.pos]) >= 0 {
			p.pos++
		}
		p.tok = token{kind: tNum, text: s[start:p.pos]}
	case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		for p.pos < len(s) && (s[p.pos] == '_' || s[p.pos] == '-' || s[p.pos] >= 'a' && s[p.pos] <= 'z' || s[p.pos] >= 'A' && s[p.pos] <= 'Z' || s[p.pos] >= '0' && s[p.pos] <= '9') {
			p.pos++
		}
		p.tok = token{kind: tIdent, text: s[start:p.pos]}
	default:
		for _, op := range []string{"==", "!=", "<=", ">=", "&&", "||", "!", "<", ">", "(", ")", "[", "]", ".", ",", "*"} {
			if strings.HasPrefix(s[p.pos:], op) {
				p.pos += len(op)
				p.tok = token{kind: tOp, text: op}
				return
			}
		}
		p.err = fmt.Errorf("unexpected character %q in %q", c, s)
		p.tok = token{kind: tEOF}
	}
}

func (p *parser) is(op string) bool { return p.tok.kind == tOp && p.tok.text == op }

func (p *parser) expect(op string) error {
	if !p.is(op) {
		return fmt.Errorf("expression %q: want %q, got %q", p.src, op, p.tok.text)
	}
	p.next()
	return nil
}

func (p *parser) or() (any, error) {
	l, err := p.and()
	for err == nil && p.is("||") {
		p.next()
		var r any
		r, err = p.and()
		if !truthy(l) {
			l = r
		}
	}
	return l, err
}

func (p *parser) and() (any, error) {
	l, err := p.cmp()
	for err == nil && p.is("&&") {
		p.next()
		var r any
		r, err = p.cmp()
		if truthy(l) {
			l = r
		}
	}
	return l, err
}

func (p *parser) cmp() (any, error) {
	l, err := p.unary()
	for err == nil && p.tok.kind == tOp && strings.Contains("== != < <= > >=", p.tok.text) && p.tok.text != "!" {
		op := p.tok.text
		p.next()
		var r any
		if r, err = p.unary(); err != nil {
			break
		}
		switch op {
		case "==":
			l = looseEqual(l, r)
		case "!=":
			l = !looseEqual(l, r)
		case "<":
			l = toNum(l) < toNum(r)
		case "<=":
			l = toNum(l) <= toNum(r)
		case ">":
			l = toNum(l) > toNum(r)
		case ">=":
			l = toNum(l) >= toNum(r)
		}
	}
	return l, err
}

func (p *parser) unary() (any, error) {
	if p.is("!") {
		p.next()
		v, err := p.unary()
		return !truthy(v), err
	}
	return p.postfix()
}

func (p *parser) postfix() (any, error) {
	v, err := p.primary()
	for err == nil {
		switch {
		case p.is("."):
			p.next()
			if p.tok.kind != tIdent && !p.is("*") {
				return nil, fmt.Errorf("expression %q: want a property name", p.src)
			}
			v = index(v, p.tok.text)
			p.next()
		case p.is("["):
			p.next()
			var k any
			if k, err = p.or(); err != nil {
				return nil, err
			}
			if err = p.expect("]"); err != nil {
				return nil, err
			}
			v = index(v, k)
		default:
			return v, p.err
		}
	}
	return v, err
}

// index looks up a property (case-insensitively, like GitHub) or element.
func index(v any, k any) any {
	switch v := v.(type) {
	case map[string]any:
		ks := toStr(k)
		if e, ok := v[ks]; ok {
			return e
		}
		for kk, e := range v {
			if strings.EqualFold(kk, ks) {
				return e
			}
		}
	case []any:
		i := int(toNum(k))
		if i >= 0 && i < len(v) {
			return v[i]
		}
	}
	return nil
}

func (p *parser) primary() (any, error) {
	t := p.tok
	switch t.kind {
	case tStr:
		p.next()
		return t.text, nil
	case tNum:
		p.next()
		return toNum(t.text), nil
	case tIdent:
		p.next()
		switch strings.ToLower(t.text) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		}
		if p.is("(") {
			p.next()
			var args []any
			for !p.is(")") {
				a, err := p.or()
				if err != nil {
					return nil, err
				}
				args = append(args, a)
				if p.is(",") {
					p.next()
				} else if !p.is(")") {
					return nil, fmt.Errorf("expression %q: want , or )", p.src)
				}
			}
			p.next()
			return callFunc(t.text, args)
		}
		v, ok := p.ctx[strings.ToLower(t.text)]
		if !ok {
			return nil, fmt.Errorf("unrecognized named-value: '%s'", t.text)
		}
		return v, nil
	case tOp:
		if t.text == "(" {
			p.next()
			v, err := p.or()
			if err != nil {
				return nil, err
			}
			return v, p.expect(")")
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	return nil, fmt.Errorf("expression %q: unexpected %q", p.src, t.text)
}
