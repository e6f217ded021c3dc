package store

import (
	"context"
	"fmt"
)

// PullRequestDeliveries returns the stored pull_request deliveries of one
// PR (any action), oldest first: the PR's head history as the webhooks told
// it, which the label scan reads to find the commit a label was added on.
// Deliveries pruned by the retention are simply absent; the caller must
// treat a history that does not reach back far enough as unknown. Payloads
// that are not JSON are skipped, not an error.
func (s *Store) PullRequestDeliveries(ctx context.Context, repo string, pr int) ([]Delivery, error) {
	// CASE evaluates json_valid first, so a malformed payload never reaches
	// json_extract (which would fail the whole query).
	out, err := s.queryDeliveries(ctx, `SELECT id, event, received_at, payload, processed FROM (
			SELECT rowid AS seq, id, event, received_at, payload, processed_at IS NOT NULL AS processed,
				CASE WHEN json_valid(CAST(payload AS TEXT)) THEN CAST(payload AS TEXT) END AS doc
			FROM deliveries WHERE event = 'pull_request')
		WHERE json_extract(doc, '$.number') = ? AND lower(json_extract(doc, '$.repository.full_name')) = lower(?)
		ORDER BY received_at, seq`, pr, repo)
	if err != nil {
		return nil, fmt.Errorf("listing the deliveries of %s#%d: %w", repo, pr, err)
	}
	return out, nil
}
