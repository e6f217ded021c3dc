package nomad

import (
	"errors"
	"fmt"

	"github.com/hashicorp/nomad/api"
)

// ErrNotFound is returned when Nomad does not know the job, evaluation or
// variable asked for (HTTP 404), e.g. a purged child.
var ErrNotFound = errors.New("not found in nomad")

// ErrForbidden is returned when the token lacks a capability (HTTP 403).
var ErrForbidden = errors.New("forbidden by nomad ACL")

// statusCode returns the HTTP status of an api error, or 0.
func statusCode(err error) int {
	var ue api.UnexpectedResponseError
	if errors.As(err, &ue) {
		return ue.StatusCode()
	}
	var uep *api.UnexpectedResponseError
	if errors.As(err, &uep) {
		return uep.StatusCode()
	}
	return 0
}

// wrap turns an api error into ours, keeping the api text for people.
func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	switch statusCode(err) {
	case 404:
		return fmt.Errorf("%s: %w: %v", what, ErrNotFound, err)
	case 403:
		return fmt.Errorf("%s: %w: %v", what, ErrForbidden, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
