package trigger

import (
	"context"
	"time"

	"github.com/buildfleet/buildfleet/manager/github"
)

// GitHub is what the trigger path asks of GitHub; *github.Client has it.
type GitHub interface {
	Role(ctx context.Context, owner, repo, user string) (string, error)
	RemoveLabel(ctx context.Context, owner, repo string, number int, label string) error
	Comment(ctx context.Context, owner, repo string, number int, body string) (int64, error)
	EditComment(ctx context.Context, owner, repo string, id int64, body string) error
	FindComment(ctx context.Context, owner, repo string, number int, marker string) (int64, error)
	PullRequest(ctx context.Context, owner, repo string, number int) (github.PullRequest, error)
	DefaultBranch(ctx context.Context, owner, repo string) (string, error)
	DispatchWorkflow(ctx context.Context, owner, repo, workflow, ref string, inputs map[string]string) (github.Dispatch, error)
	FindRun(ctx context.Context, owner, repo, workflow, runNameContains string, createdSince time.Time) (github.Run, error)
	GetRun(ctx context.Context, owner, repo string, id int64) (github.Run, error)
	CancelRun(ctx context.Context, owner, repo string, id int64) error
	LabeledOpenPRs(ctx context.Context, owner, repo, label string) ([]int, error)
	LastLabeler(ctx context.Context, owner, repo string, number int, label string) (string, time.Time, error)
	LastLabelEvent(ctx context.Context, owner, repo string, number int, label string) (github.LabelEvent, error)
	// WriteRoom tells whether a write made with ctx would go now,
	// without waiting for the write budget.
	WriteRoom(ctx context.Context) bool
}

var _ GitHub = (*github.Client)(nil)
