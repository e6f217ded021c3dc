package donor

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// quote writes s as a double-quoted HCL string whose value is exactly s.
//
// Nomad parses agent configuration with HCL 1, whose scanner lets a `"` end
// nothing while inside `${…}`, and whose unquoting copies `${…}` verbatim.
// So besides `"`, `\` and control characters, `$` is written as \u0024
// (and `%` as \u0025, which HCL 2 templates treat like `$`): no value can
// open an interpolation, end the string early or start a new line. Invalid
// UTF-8 becomes U+FFFD.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '$', '%':
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			switch {
			case r == utf8.RuneError:
				b.WriteString(`\ufffd`)
			case !unicode.IsPrint(r) && r <= 0xffff:
				fmt.Fprintf(&b, `\u%04x`, r)
			case !unicode.IsPrint(r):
				fmt.Fprintf(&b, `\U%08x`, r)
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// quoteList writes ss as an HCL list of strings.
func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
