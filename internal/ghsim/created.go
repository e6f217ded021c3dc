package ghsim

import (
	"fmt"
	"strings"
	"time"
)

// timeRange is a half-open interval [from, to) of creation times; a zero
// end is unbounded.
type timeRange struct{ from, to time.Time }

func (tr timeRange) contains(t time.Time) bool {
	return (tr.from.IsZero() || !t.Before(tr.from)) && (tr.to.IsZero() || t.Before(tr.to))
}

// parseCreated parses GitHub's search date-range syntax, as the runs lists'
// `created` parameter takes it: `>=T`, `>T`, `<=T`, `<T`, `A..B` (either side
// may be `*`) or a bare T. T is a date (YYYY-MM-DD, standing for the whole
// UTC day) or a date and time (YYYY-MM-DDTHH:MM:SS with Z or ±HH:MM, UTC
// when omitted; seconds optional), standing for that second or minute.
func parseCreated(s string) (timeRange, error) {
	s = strings.TrimSpace(s)
	if a, b, ok := strings.Cut(s, ".."); ok {
		var tr timeRange
		if a = strings.TrimSpace(a); a != "*" {
			from, _, err := parseSearchTime(a)
			if err != nil {
				return timeRange{}, err
			}
			tr.from = from
		}
		if b = strings.TrimSpace(b); b != "*" {
			_, to, err := parseSearchTime(b)
			if err != nil {
				return timeRange{}, err
			}
			tr.to = to
		}
		return tr, nil
	}
	for _, op := range []string{">=", "<=", ">", "<"} {
		rest, ok := strings.CutPrefix(s, op)
		if !ok {
			continue
		}
		start, end, err := parseSearchTime(strings.TrimSpace(rest))
		if err != nil {
			return timeRange{}, err
		}
		switch op {
		case ">=":
			return timeRange{from: start}, nil
		case ">":
			return timeRange{from: end}, nil
		case "<=":
			return timeRange{to: end}, nil
		default:
			return timeRange{to: start}, nil
		}
	}
	start, end, err := parseSearchTime(s)
	return timeRange{from: start, to: end}, err
}

// parseSearchTime returns the span [start, end) that one date or date-time
// of the search syntax stands for.
func parseSearchTime(s string) (start, end time.Time, err error) {
	layouts := []struct {
		layout string
		span   time.Duration
	}{
		{time.RFC3339, time.Second},
		{"2006-01-02T15:04:05", time.Second},
		{"2006-01-02T15:04Z07:00", time.Minute},
		{"2006-01-02T15:04", time.Minute},
		{"2006-01-02", 24 * time.Hour},
	}
	for _, l := range layouts {
		if t, err := time.ParseInLocation(l.layout, s, time.UTC); err == nil {
			t = t.UTC().Truncate(l.span)
			return t, t.Add(l.span), nil
		}
	}
	return time.Time{}, time.Time{}, fmt.Errorf("invalid date %q", s)
}
