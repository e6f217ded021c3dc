package retry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/nomad"
	"github.com/buildfleet/buildfleet/manager/store"
)

// answer serves one status with a JSON message to every request.
func answer(t *testing.T, code int, header map[string]string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"message":"answer %d"}`, code)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestClassifiesRealClientErrors: the errors the real GitHub and Nomad
// clients return for each answer are classified once, here, the same for
// every loop.
func TestClassifiesRealClientErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		code      int
		header    map[string]string
		permanent bool
	}{
		{404, nil, true},
		{410, nil, true},
		{422, nil, true},
		{403, nil, true}, // the credential may not do it
		{403, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}, false},
		{429, map[string]string{"Retry-After": "1"}, false},
		{500, nil, false},
		{502, nil, false},
	} {
		url := answer(t, tc.code, tc.header)
		gh, err := github.New(config.GitHub{APIURL: url + "/", Token: "t"}, github.Options{
			Retry: github.Retry{MaxAttempts: 1, MaxWait: time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		err = gh.RemoveLabel(ctx, "o", "r", 1, "test: quick")
		if err == nil {
			t.Fatalf("GitHub %d: no error", tc.code)
		}
		if got := Permanent(err); got != tc.permanent {
			t.Errorf("GitHub %d %v: Permanent = %v, want %v (%v)", tc.code, tc.header, got, tc.permanent, err)
		}
		if marked := Later(err); IsLater(marked) == tc.permanent {
			t.Errorf("GitHub %d: Later marks it %v; a permanent error is never retried", tc.code, IsLater(marked))
		}
	}
	for _, tc := range []struct {
		code      int
		permanent bool
	}{{404, true}, {403, true}, {500, false}} {
		nm, err := nomad.New(config.Nomad{Address: answer(t, tc.code, nil)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = nm.BlockedReason(ctx, "eval-1")
		if err == nil {
			t.Fatalf("Nomad %d: no error", tc.code)
		}
		if got := Permanent(err); got != tc.permanent {
			t.Errorf("Nomad %d: Permanent = %v, want %v (%v)", tc.code, got, tc.permanent, err)
		}
	}
	// The store's own errors and a lost race are for later.
	for _, err := range []error{store.ErrConflict, errors.New("database is locked"), context.DeadlineExceeded} {
		if Permanent(err) || !IsLater(Later(err)) {
			t.Errorf("%v: not retried later", err)
		}
	}
	if Later(nil) != nil {
		t.Error("Later(nil) is not nil")
	}
}
