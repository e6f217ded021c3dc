// Package lifecycle is the one place that says which states a build request
// goes through and which moves between them are allowed. The trigger, the
// fleet and the manager move requests only through the store's
// compare-and-set (store.UpdateRequest with From), and the store refuses any
// move this table does not list, so two actors (two loops of the daemon, or
// the daemon and a `buildfleet trigger` process on the same store) can never
// both take the same step.
//
//	checking ──role < min_role──▶ refusing ──label removed, comment──▶ refused
//	   │
//	   └──role ok──▶ accepted ──PR closed──▶ skipped
//	                    │
//	                    └─ dispatch ──run id known──▶ dispatched ──run completed──▶ done
//	                          │                           │
//	                          ├─ 204 ──▶ locating ────────┤ newer request, run still queued
//	                          │                           └──▶ superseded
//	                          └─ refused by GitHub, config gone ──▶ failed
//
// done is final; its reason carries the builders' outcome (succeeded,
// failed, fleet_error, cancelled) once every builder has a final result, so
// done → done is allowed exactly to write that outcome.
package lifecycle

import "fmt"

// State is a request's state as stored.
type State string

// Request states.
const (
	Checking   State = "checking"
	Refusing   State = "refusing"
	Refused    State = "refused"
	Accepted   State = "accepted"
	Skipped    State = "skipped"
	Locating   State = "locating"
	Dispatched State = "dispatched"
	Failed     State = "failed"
	Superseded State = "superseded"
	Done       State = "done"
)

// Outcomes a done request's reason takes once every builder has a final
// result.
const (
	OutcomeSucceeded  = "succeeded"
	OutcomeFailed     = "failed"
	OutcomeFleetError = "fleet_error"
	OutcomeCancelled  = "cancelled"
)

// next lists, per state, the states a request may move to.
var next = map[State][]State{
	Checking:   {Refusing, Accepted, Failed},
	Refusing:   {Refused, Failed},
	Accepted:   {Skipped, Locating, Dispatched, Failed},
	Locating:   {Skipped, Dispatched, Failed},
	Dispatched: {Done, Superseded, Failed},
	Done:       {Done},
}

// All returns every state, in the order of the diagram.
func All() []State {
	return []State{Checking, Refusing, Refused, Accepted, Skipped, Locating, Dispatched, Failed, Superseded, Done}
}

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	for _, k := range All() {
		if k == s {
			return true
		}
	}
	return false
}

// Final reports whether no step is left to take for a request in s (done
// may still have its outcome written).
func (s State) Final() bool {
	switch s {
	case Refused, Skipped, Failed, Superseded, Done:
		return true
	}
	return false
}

// Finals returns the final states, for queries of open requests.
func Finals() []State {
	var out []State
	for _, s := range All() {
		if s.Final() {
			out = append(out, s)
		}
	}
	return out
}

// Allowed reports whether a request may move from one state to another.
func Allowed(from, to State) bool {
	for _, n := range next[from] {
		if n == to {
			return true
		}
	}
	return false
}

// Check returns an error naming both states when the move is not allowed.
func Check(from, to State) error {
	if !from.Valid() {
		return fmt.Errorf("unknown request state %q", from)
	}
	if !to.Valid() {
		return fmt.Errorf("unknown request state %q", to)
	}
	if !Allowed(from, to) {
		return fmt.Errorf("a request cannot move from %s to %s", from, to)
	}
	return nil
}
