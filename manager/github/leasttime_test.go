package github

import (
	"testing"
	"time"
)

func TestLeastTime(t *testing.T) {
	gh := DefaultWriteLimits()
	for _, tc := range []struct {
		name   string
		writes int
		want   time.Duration
	}{
		{"none", 0, 0},
		{"one window", 80, 0},
		{"one more than a minute's", 81, time.Minute},
		{"the hour's", 500, 6 * time.Minute},
		{"one more than an hour's", 501, time.Hour},
	} {
		if got := LeastTime(tc.writes, gh); got != tc.want {
			t.Errorf("%s: LeastTime(%d) = %s, want %s", tc.name, tc.writes, got, tc.want)
		}
	}
}
