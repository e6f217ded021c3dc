package trigger

import (
	"strings"
	"testing"
	"time"
)

func TestHeadAt(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := t0.Add(10 * time.Minute) // the label
	s := func(c string) string { return strings.Repeat(c, 40) }
	A, B, C := s("a"), s("b"), s("c")
	obs := func(d time.Duration, head string) headPoint { return headPoint{At: at.Add(d), Head: head} }
	push := func(d time.Duration, before, after string) headPoint {
		return headPoint{At: at.Add(d), Head: after, Before: before}
	}
	opened := obs(-10*time.Minute, A)
	for _, tc := range []struct {
		name     string
		points   []headPoint
		rewrites []time.Duration
		current  string
		want     string // "" means unknown
		why      string // part of the reason when unknown
	}{
		{name: "no push since", points: []headPoint{opened}, current: A, want: A},
		{name: "push after the label, recorded", points: []headPoint{opened, push(time.Minute, A, B)}, current: B, want: A},
		{name: "push before the label, recorded", points: []headPoint{opened, push(-time.Minute, A, B)}, current: B, want: B},
		{name: "two pushes around the label", points: []headPoint{opened, push(-time.Minute, A, B), push(time.Minute, B, C)}, current: C, want: B},
		{name: "pushes delivered out of order", points: []headPoint{push(time.Minute, B, C), opened, push(-time.Minute, A, B)}, current: C, want: B},
		{name: "a push and a label in one second, other order", points: []headPoint{opened, obs(time.Minute, B), push(time.Minute, A, B)}, current: B, want: A},
		{name: "delivered twice", points: []headPoint{opened, push(time.Minute, A, B), push(time.Minute, A, B)}, current: B, want: A},
		{name: "push after the label, lost", points: []headPoint{opened}, current: B, why: "not recorded"},
		{name: "push before the label, lost", points: []headPoint{opened, obs(time.Minute, B)}, current: B, why: "miss a change"},
		{name: "push lost, a later push recorded", points: []headPoint{opened, push(time.Minute, B, C)}, current: C, why: "miss a change"},
		{name: "gap long before the last point before the label", points: []headPoint{obs(-20*time.Minute, C), opened, push(time.Minute, A, B)}, current: B, want: A},
		{name: "unrecorded change just before a point in the label's second", points: []headPoint{opened, obs(0, B)}, current: B, why: "miss a change"},
		{name: "unrecorded change long before a point in the label's second", points: []headPoint{opened, obs(-time.Minute, B), obs(0, B)}, current: B, want: B},
		{name: "push 1s after the label", points: []headPoint{opened, push(time.Second, A, B)}, current: B, why: "within"},
		{name: "push 2s before the label", points: []headPoint{opened, push(-2*time.Second, A, B)}, current: B, why: "within"},
		{name: "push 3s after the label", points: []headPoint{opened, push(3*time.Second, A, B)}, current: B, want: A},
		{name: "two heads in one second at the anchor", points: []headPoint{obs(-time.Minute, A), obs(-time.Minute, B)}, current: B, why: "two heads"},
		{name: "nothing recorded before the label (pruned)", points: []headPoint{push(time.Minute, A, B)}, current: B, why: "no recorded webhook"},
		{name: "nothing recorded at all", current: A, why: "no recorded webhook"},
		{name: "force push away and back, unseen", points: []headPoint{opened, obs(5*time.Minute, A)}, rewrites: []time.Duration{-time.Minute, time.Minute}, current: A, why: "rewritten"},
		{name: "force push recorded", points: []headPoint{opened, push(time.Minute, A, B)}, rewrites: []time.Duration{time.Minute}, current: B, want: A},
		{name: "force push long before the anchor", points: []headPoint{obs(-time.Minute, A)}, rewrites: []time.Duration{-5 * time.Minute}, current: A, want: A},
		{name: "force push at the label", points: []headPoint{opened, push(5*time.Minute, A, B)}, rewrites: []time.Duration{time.Second}, current: B, why: "within"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rw []time.Time
			for _, d := range tc.rewrites {
				rw = append(rw, at.Add(d))
			}
			got, why := headAt(at, tc.points, rw, tc.current)
			if got != tc.want {
				t.Fatalf("headAt = %q (%s), want %q", short(got), why, short(tc.want))
			}
			if tc.want == "" && !strings.Contains(why, tc.why) {
				t.Errorf("reason %q, want it to say %q", why, tc.why)
			}
			if tc.want != "" && why != "" {
				t.Errorf("known head with a reason %q", why)
			}
		})
	}
}
