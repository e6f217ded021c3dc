package github

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	gh "github.com/google/go-github/v60/github"
)

// Sentinels for the answers callers act on. Test with errors.Is; the
// *Error in the chain carries the status and GitHub's message.
var (
	// ErrNotFound: the resource does not exist or is not visible (404),
	// e.g. an unknown user, a label already removed, a deleted PR.
	ErrNotFound = errors.New("not found on github")
	// ErrInvalid: GitHub refused the request's content (422).
	ErrInvalid = errors.New("rejected by github as invalid")
	// ErrConflict: the resource is not in a state that allows the call
	// (409), e.g. cancelling a run that already completed.
	ErrConflict = errors.New("conflict on github")
)

// Error is a non-success answer from GitHub. It never holds credentials:
// only the status and GitHub's message.
type Error struct {
	Status  int
	Message string
	kind    error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("github answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap gives the sentinel of the status, if any.
func (e *Error) Unwrap() error { return e.kind }

// wrap turns a go-github error into this package's errors, prefixed with
// op ("removing label"). Transport errors keep their chain (context errors,
// ErrRateLimited from a pause).
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var (
		rl    *gh.RateLimitError
		abuse *gh.AbuseRateLimitError
		er    *gh.ErrorResponse
	)
	switch {
	case errors.As(err, &rl):
		return fmt.Errorf("%s: %w", op, &Error{Status: statusOf(rl.Response), Message: rl.Message, kind: ErrRateLimited})
	case errors.As(err, &abuse):
		return fmt.Errorf("%s: %w", op, &Error{Status: statusOf(abuse.Response), Message: abuse.Message, kind: ErrRateLimited})
	case errors.As(err, &er):
		e := &Error{Status: statusOf(er.Response), Message: message(er)}
		switch e.Status {
		case http.StatusNotFound:
			e.kind = ErrNotFound
		case http.StatusUnprocessableEntity:
			e.kind = ErrInvalid
		case http.StatusConflict:
			e.kind = ErrConflict
		case http.StatusTooManyRequests:
			e.kind = ErrRateLimited
		}
		return fmt.Errorf("%s: %w", op, e)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func statusOf(r *http.Response) int {
	if r == nil {
		return 0
	}
	return r.StatusCode
}

// message joins GitHub's message with the details of a validation error.
func message(er *gh.ErrorResponse) string {
	parts := []string{er.Message}
	for _, d := range er.Errors {
		switch {
		case d.Message != "":
			parts = append(parts, d.Message)
		case d.Code != "":
			parts = append(parts, strings.TrimSpace(d.Resource+" "+d.Field+" "+d.Code))
		}
	}
	return strings.Join(parts, "; ")
}
