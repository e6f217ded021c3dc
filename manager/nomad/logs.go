package nomad

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/nomad/api"
)

// maxLogTail bounds what RunnerLogTail reads of each stream.
const maxLogTail = 16 << 10

// RunnerLogTail returns the end of a finished runner task's stdout and
// stderr (at most 16 KiB of each). The fleet reads it only when a runner
// ended without taking its job, to tell why (e.g. GitHub refusing an
// outdated runner). Needs the read-logs capability. The bootstrap never
// prints the JIT config, so the tail holds no secret.
func (c *Client) RunnerLogTail(ctx context.Context, allocID string) (string, error) {
	q := (&api.QueryOptions{Namespace: c.ns}).WithContext(ctx)
	alloc, _, err := c.api.Allocations().Info(allocID, q)
	if err != nil {
		return "", wrap("reading allocation "+allocID, err)
	}
	var b strings.Builder
	for _, stream := range []string{"stdout", "stderr"} {
		s, err := c.logTail(ctx, alloc, stream)
		if err != nil {
			return b.String(), err
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

func (c *Client) logTail(ctx context.Context, alloc *api.Allocation, stream string) (string, error) {
	cancel := make(chan struct{})
	defer close(cancel)
	q := (&api.QueryOptions{Namespace: c.ns}).WithContext(ctx)
	frames, errs := c.api.AllocFS().Logs(alloc, false, "runner", stream, api.OriginEnd, maxLogTail, cancel, q)
	var b strings.Builder
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				return b.String(), nil
			}
			if f != nil && b.Len() < 2*maxLogTail {
				b.Write(f.Data)
			}
		case err, ok := <-errs:
			if ok && err != nil {
				return b.String(), wrap(fmt.Sprintf("reading the %s of allocation %s", stream, alloc.ID), err)
			}
			errs = nil
			if frames == nil {
				return b.String(), nil
			}
		case <-ctx.Done():
			return b.String(), ctx.Err()
		}
	}
}
