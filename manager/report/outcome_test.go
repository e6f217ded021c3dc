package report

import "testing"

func TestOutcome(t *testing.T) {
	ok := Result{State: StateSuccess}
	fail := Result{State: StateFailure}
	fleet := Result{State: StateError, Description: "no host within 6h0m0s"}
	cancelled := Result{State: StateError, Conclusion: "cancelled"}
	for _, tc := range []struct {
		name    string
		results []Result
		want    string
	}{
		{"all passed", []Result{ok, ok}, OutcomeSucceeded},
		{"a failure outweighs a fleet error", []Result{fleet, fail, ok}, OutcomeFailed},
		{"a fleet error outweighs a cancellation", []Result{cancelled, fleet}, OutcomeFleetError},
		{"cancelled", []Result{ok, cancelled}, OutcomeCancelled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Outcome(tc.results); got != tc.want {
				t.Errorf("Outcome = %s, want %s", got, tc.want)
			}
		})
	}
}
