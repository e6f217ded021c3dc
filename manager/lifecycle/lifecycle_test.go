package lifecycle

import "testing"

func TestTransitions(t *testing.T) {
	for _, tc := range []struct {
		from, to State
		ok       bool
	}{
		{Checking, Accepted, true},
		{Checking, Refusing, true},
		{Refusing, Refused, true},
		{Accepted, Dispatched, true},
		{Accepted, Locating, true},
		{Locating, Dispatched, true},
		{Dispatched, Done, true},
		{Dispatched, Superseded, true},
		{Done, Done, true},
		// Never backwards, never out of a final state, never a skipped step.
		{Checking, Dispatched, false},
		{Refusing, Accepted, false},
		{Dispatched, Accepted, false},
		{Done, Dispatched, false},
		{Superseded, Done, false},
		{Refused, Accepted, false},
		{Failed, Dispatched, false},
		{Accepted, Accepted, false},
		{"nonsense", Done, false},
	} {
		if got := Allowed(tc.from, tc.to); got != tc.ok {
			t.Errorf("Allowed(%s, %s) = %v, want %v", tc.from, tc.to, got, tc.ok)
		}
		if err := Check(tc.from, tc.to); (err == nil) != tc.ok {
			t.Errorf("Check(%s, %s) = %v", tc.from, tc.to, err)
		}
	}
}

// TestEveryStateReachable: the table has no orphan state, and only final
// states (and done, for its outcome) have no way out.
func TestEveryStateReachable(t *testing.T) {
	seen := map[State]bool{Checking: true}
	queue := []State{Checking}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, n := range next[s] {
			if !seen[n] {
				seen[n] = true
				queue = append(queue, n)
			}
		}
	}
	for _, s := range All() {
		if !seen[s] {
			t.Errorf("state %s cannot be reached from checking", s)
		}
		if !s.Final() && len(next[s]) == 0 {
			t.Errorf("open state %s has no way out", s)
		}
		if s.Final() && s != Done && len(next[s]) != 0 {
			t.Errorf("final state %s can still move: %v", s, next[s])
		}
	}
}
