package nomad_test

import (
	"testing"

	"github.com/buildfleet/buildfleet/manager/nomad"
)

func TestOperation(t *testing.T) {
	for _, tc := range []struct{ method, path, want string }{
		{"POST", "/v1/job/runner-linux/dispatch", "POST job/dispatch"},
		{"GET", "/v1/job/runner-linux%2Fdispatch-123", "GET job"},
		{"DELETE", "/v1/job/runner-linux/dispatch-gh1-a1-abc", "DELETE job"},
		{"GET", "/v1/nodes", "GET nodes"},
		{"GET", "/v1/node/6f2c0e5e-1111-2222-3333-444455556666/allocations", "GET node/allocations"},
		{"POST", "/v1/node/6f2c0e5e-1111-2222-3333-444455556666/eligibility", "POST node/eligibility"},
		{"PUT", "/v1/var/nomad/jobs/runner-linux/bf-x", "PUT var"},
		{"GET", "/v1/event/stream", "GET event/stream"},
		{"GET", "/v1/status/leader", "GET status/leader"},
		{"GET", "/v1/whatever/secret-token", "GET other"},
	} {
		if got := nomad.Operation(tc.method, tc.path); got != tc.want {
			t.Errorf("Operation(%s %s) = %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}
