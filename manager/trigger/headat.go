package trigger

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/buildfleet/buildfleet/manager/store"
)

// headSlack is how close to the label a push must be to leave the order of
// the two unknown: GitHub's event times have whole seconds, and a push
// and a label in the same moment may be recorded either way round.
const headSlack = 2 * time.Second

// maxSameSecond bounds the points of one second whose order chainGroup
// tries out; a PR's head does not change that often in one second.
const maxSameSecond = 6

// headPoint is one thing a pull_request webhook told of the PR's head: at
// At (the payload's pull_request.updated_at, GitHub's clock, the same as
// the label event's) the head was Head. A synchronize also says the head
// moved from Before to Head at that moment.
type headPoint struct {
	At     time.Time
	Head   string
	Before string // synchronize only
	Label  string // labeled only: the label added
	// Pending: the delivery is stored but its handling has not ended.
	Pending bool
}

// headHistory is the PR's head as the stored webhooks tell it.
func (t *Trigger) headHistory(ctx context.Context, repo string, pr int) ([]headPoint, error) {
	ds, err := t.st.PullRequestDeliveries(ctx, repo, pr)
	if err != nil {
		return nil, err
	}
	var out []headPoint
	for _, d := range ds {
		if p, ok := parseHeadPoint(d); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// parseHeadPoint reads the head of one stored pull_request delivery. A
// payload without a well-formed time or SHA tells nothing and is left out:
// a gap that headAt then treats as such.
func parseHeadPoint(d store.Delivery) (headPoint, bool) {
	var e struct {
		Action string `json:"action"`
		Label  *struct {
			Name string `json:"name"`
		} `json:"label"`
		Before      string `json:"before"`
		After       string `json:"after"`
		PullRequest struct {
			UpdatedAt time.Time `json:"updated_at"`
			Head      struct {
				SHA string `json:"sha"`
			} `json:"head"`
		} `json:"pull_request"`
	}
	if json.Unmarshal(d.Payload, &e) != nil || e.PullRequest.UpdatedAt.IsZero() || !shaRE.MatchString(e.PullRequest.Head.SHA) {
		return headPoint{}, false
	}
	p := headPoint{At: e.PullRequest.UpdatedAt, Head: e.PullRequest.Head.SHA, Pending: !d.Processed}
	if e.Action == "labeled" && e.Label != nil {
		p.Label = e.Label.Name
	}
	if e.Action == "synchronize" {
		if !shaRE.MatchString(e.Before) || (e.After != "" && e.After != p.Head) {
			return headPoint{}, false
		}
		p.Before = e.Before
	}
	return p, true
}

// labelledHead returns the head a stored labeled webhook of this label
// event carried (same label, same second), or "": the event's own word,
// better than any history. The scan meets it when the webhook came but the
// label is still on the PR (its removal keeps failing).
func labelledHead(points []headPoint, label string, at time.Time) string {
	for _, p := range points {
		if p.Label == label && p.At.Equal(at) {
			return p.Head
		}
	}
	return ""
}

// labelPending reports whether the stored labeled webhook of this label
// event (same label, same second) waits to be handled.
func labelPending(points []headPoint, label string, at time.Time) bool {
	for _, p := range points {
		if p.Label == label && p.At.Equal(at) && p.Pending {
			return true
		}
	}
	return false
}

// headAt returns the head the PR had at the moment at (a label's time),
// or "" and why that cannot be known for sure. It is known when the
// recorded points form one unbroken chain from the last point at or before
// at up to the PR's current head: each push starts from the head before
// it, each other point shows the head the chain says, and the last head is
// the current one. GitHub's own record of force pushes and restored
// branches (rewrites, from the events) must be matched by a
// recorded push from that point on; otherwise the head may have gone away
// and come back unseen. A push or rewrite within headSlack of at leaves
// the order open.
func headAt(at time.Time, points []headPoint, rewrites []time.Time, current string) (string, string) {
	pts := slices.Clone(points)
	slices.SortFunc(pts, func(a, b headPoint) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.Before+a.Head, b.Before+b.Head)
	})
	pts = slices.Compact(pts) // a delivery twice (two ids) is one point

	near := func(a, b time.Time) bool { return a.Sub(b).Abs() <= headSlack }
	for _, p := range pts {
		if p.Before != "" && near(p.At, at) {
			return "", fmt.Sprintf("a push at %s came within %s of the label", p.At.UTC().Format(time.RFC3339), headSlack)
		}
	}
	for _, r := range rewrites {
		if near(r, at) {
			return "", fmt.Sprintf("the head branch was rewritten at %s, within %s of the label", r.UTC().Format(time.RFC3339), headSlack)
		}
	}
	anchor := -1
	for i, p := range pts {
		if !p.At.After(at) {
			anchor = i
		}
	}
	if anchor < 0 {
		return "", "no recorded webhook of the pull request from before the label (lost, or older than the store's retention)"
	}
	from := pts[anchor].At

	// Walk the points in time order; points of one second are taken in
	// whichever order continues the chain (webhooks may come reordered).
	// A gap before the last point before the label does not matter: that
	// point shows the head anew. At that point's second the chain may
	// start anew once, at the second's first point; but not near the
	// label, where the missing change may have come after it.
	var head, labelled string
	for i := 0; i < len(pts); {
		j := i
		for j < len(pts) && pts[j].At.Equal(pts[i].At) {
			j++
		}
		next, ok := chainGroup(head, pts[i:j])
		if !ok {
			if pts[i].At.After(from) || near(pts[i].At, at) {
				return "", fmt.Sprintf("the recorded webhooks miss a change of the head at or before %s (they led to %s)",
					pts[i].At.UTC().Format(time.RFC3339), short(head))
			}
			if next, ok = chainGroup("", pts[i:j]); !ok && pts[i].At.Equal(from) {
				return "", fmt.Sprintf("the recorded webhooks of %s show two heads in the same second", from.UTC().Format(time.RFC3339))
			}
		}
		head = next
		if !pts[i].At.After(at) {
			labelled = head
		}
		i = j
	}
	if head != current {
		return "", fmt.Sprintf("the PR's head %s is not the last recorded one %s: a push after the label was not recorded", short(current), short(head))
	}
	for _, r := range rewrites {
		if r.Before(from.Add(-headSlack)) {
			continue
		}
		if !slices.ContainsFunc(pts, func(p headPoint) bool { return p.Before != "" && near(p.At, r) }) {
			return "", fmt.Sprintf("the head branch was rewritten at %s and no webhook of that push was recorded", r.UTC().Format(time.RFC3339))
		}
	}
	return labelled, ""
}

// chainGroup continues the chain at head through the points of one
// second, taken in an order where each follows the one before; with head
// "" the chain may start at any of them. It returns the head after them
// and whether they chained.
func chainGroup(head string, group []headPoint) (string, bool) {
	if len(group) == 0 {
		return head, true
	}
	if len(group) > maxSameSecond {
		return head, false // more changes in one second than can be ordered
	}
	for k, p := range group {
		if head != "" && !follows(head, p) {
			continue
		}
		rest := slices.Delete(slices.Clone(group), k, k+1)
		if h, ok := chainGroup(p.Head, rest); ok {
			return h, true
		}
	}
	return head, false
}

// follows reports whether p continues a chain whose head is head.
func follows(head string, p headPoint) bool { return start(p) == head }

// start is the head a point says the PR had just before it.
func start(p headPoint) string {
	if p.Before != "" {
		return p.Before
	}
	return p.Head
}
