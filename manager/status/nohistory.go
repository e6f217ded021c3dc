package status

import (
	"context"
	"time"

	"github.com/buildfleet/buildfleet/manager/store"
)

// noHistory is the History of a Store that keeps none: empty lists.
type noHistory struct{}

func (noHistory) RequestsPage(context.Context, time.Time, int, string, bool) ([]store.Request, error) {
	return nil, nil
}

func (noHistory) BuildsOfRequests(context.Context, []string) ([]store.Build, error) { return nil, nil }

func (noHistory) BuildsOfRequest(context.Context, string) ([]store.Build, error) { return nil, nil }

func (noHistory) PoolBuilds(context.Context, string, time.Time, int) ([]store.Build, error) {
	return nil, nil
}
