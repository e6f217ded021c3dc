// Package retry is the one classification of errors into "try again later"
// and "a retry will not change the answer", built on the GitHub and Nomad
// packages' own sentinels. The trigger, the fleet and the reporter all ask
// it, so that one answer from GitHub or Nomad is never retried by one loop
// and dropped by another.
package retry

import (
	"errors"
	"fmt"

	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/nomad"
)

// ErrLater marks a step that did not take effect and is to be tried again
// on a later pass (a delivery stays unprocessed, a request stays open).
var ErrLater = errors.New("to be retried")

// Later marks err as worth retrying later; nil stays nil. A permanent
// error stays permanent: marking it does not make a retry useful.
func Later(err error) error {
	if err == nil || Permanent(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrLater, err)
}

// IsLater reports whether err was marked by Later.
func IsLater(err error) bool { return errors.Is(err, ErrLater) }

// Permanent reports an answer a retry will not change: the object is gone
// or not visible (GitHub or Nomad 404, GitHub 410), its content was
// refused (GitHub 422), or the credential may not do it (GitHub 403 that
// is no rate limit, Nomad ACL 403). Rate limits, server errors, network
// errors and the store's own errors are never permanent.
func Permanent(err error) bool {
	if err == nil || errors.Is(err, github.ErrRateLimited) {
		return false
	}
	switch {
	case errors.Is(err, github.ErrNotFound), errors.Is(err, github.ErrInvalid),
		errors.Is(err, nomad.ErrNotFound), errors.Is(err, nomad.ErrForbidden):
		return true
	}
	var ge *github.Error
	if errors.As(err, &ge) {
		switch ge.Status {
		case 403, 404, 410, 422:
			return true
		}
	}
	return false
}
