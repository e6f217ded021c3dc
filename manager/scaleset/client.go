package scaleset

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/actions/actions-runner-controller/github/actions"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/buildfleet/buildfleet/config"
)

// This file is the package's edge to ARC's client: only here is
// github.com/actions/actions-runner-controller imported, and its errors
// become ours.

// Service is what a listener needs from the Actions service: ARC's
// *actions.Client, with the one call it gets wrong wrapped (client below).
type Service interface {
	GetRunnerGroupByName(ctx context.Context, name string) (*actions.RunnerGroup, error)
	GetRunnerScaleSet(ctx context.Context, runnerGroupID int, name string) (*actions.RunnerScaleSet, error)
	CreateRunnerScaleSet(ctx context.Context, set *actions.RunnerScaleSet) (*actions.RunnerScaleSet, error)
	CreateMessageSession(ctx context.Context, setID int, owner string) (*actions.RunnerScaleSetSession, error)
	RefreshMessageSession(ctx context.Context, setID int, sessionID *uuid.UUID) (*actions.RunnerScaleSetSession, error)
	DeleteMessageSession(ctx context.Context, setID int, sessionID *uuid.UUID) error
	GetMessage(ctx context.Context, url, token string, lastMessageID int64) (*actions.RunnerScaleSetMessage, error)
	DeleteMessage(ctx context.Context, url, token string, messageID int64) error
	AcquireJobs(ctx context.Context, setID int, token string, requestIDs []int64) ([]int64, error)
	GetAcquirableJobs(ctx context.Context, setID int) (*actions.AcquirableJobList, error)
	GenerateJitRunnerConfig(ctx context.Context, s *actions.RunnerScaleSetJitRunnerSetting, setID int) (*actions.RunnerScaleSetJitRunnerConfig, error)
}

var _ Service = (*client)(nil)

// client is ARC's client with DeleteMessageSession done right: v0.27.6
// reports GitHub's 204 as "unexpected status code" (its doSessionRequest
// only accepts an answer with a body), so the delete is sent through the
// client's own request builder and judged here.
type client struct{ *actions.Client }

func (c client) DeleteMessageSession(ctx context.Context, setID int, sessionID *uuid.UUID) error {
	req, err := c.NewActionsServiceRequest(ctx, http.MethodDelete,
		"/_apis/runtime/runnerscalesets/"+strconv.Itoa(setID)+"/sessions/"+sessionID.String(), nil)
	if err != nil {
		return fmt.Errorf("deleting session %s: %w", sessionID, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("deleting session %s: %w", sessionID, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusBadRequest:
		// RunnerScaleSetSessionExpiredException: gone already.
		return fmt.Errorf("deleting session %s: %w", sessionID, ErrSessionGone)
	}
	return fmt.Errorf("deleting session %s: %w", sessionID, actions.ParseActionsErrorFromResponse(resp))
}

// Errors callers act on.
var (
	// ErrSessionGone: the session is not (or no longer) the set's.
	ErrSessionGone = errors.New("message session gone")
	// ErrNoSession: the set's listener has no session open (starting, or
	// GitHub unreachable), so jobs cannot be acquired now.
	ErrNoSession = errors.New("no message session open")
	// ErrSessionHeld: another listener holds the set's message session.
	ErrSessionHeld = errors.New("message session held by another listener")
)

// statusOf is the HTTP status of an Actions service error, or 0.
func statusOf(err error) int {
	var ae *actions.ActionsError
	if errors.As(err, &ae) {
		return ae.StatusCode
	}
	return 0
}

// tokenExpired tells ARC's "message queue token expired" (a 401 on the
// queue): the session must be refreshed.
func tokenExpired(err error) bool {
	var e *actions.MessageQueueTokenExpiredError
	return errors.As(err, &e)
}

// configRoot is the web root ARC's client wants (it takes a repository's
// web URL and derives the API from it: api.<host> for github.com and
// GHE.com, <host>/api/v3 for a GitHub Enterprise Server), from the REST
// API root the manager is configured with.
func configRoot(apiURL string) (string, error) {
	u, err := url.Parse(apiURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("github.api_url %q: not a URL", apiURL)
	}
	host := u.Host
	if h, ok := strings.CutPrefix(host, "api."); ok && (strings.EqualFold(h, "github.com") || strings.HasSuffix(h, ".ghe.com")) {
		host = h
	}
	return u.Scheme + "://" + host, nil
}

// NewService builds ARC's client for one repository from the manager's
// GitHub credentials: a token (sent as ARC sends it) or the App
// installation (ARC signs its own JWT with the App's key).
// calls, when set, counts the client's calls.
func NewService(gh config.GitHub, repo string, calls *prometheus.CounterVec) (Service, error) {
	web, err := configRoot(gh.APIURL)
	if err != nil {
		return nil, err
	}
	auth := &actions.ActionsAuth{Token: gh.Token.Reveal()}
	if gh.App.Configured() {
		key, err := os.ReadFile(gh.App.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("reading github.app.private_key_file: %w", err)
		}
		auth = &actions.ActionsAuth{AppCreds: &actions.GitHubAppAuth{
			AppID: gh.App.ID, AppInstallationID: gh.App.InstallationID, AppPrivateKey: string(key)}}
	}
	c, err := actions.NewClient(web+"/"+repo, auth)
	if err != nil {
		return nil, fmt.Errorf("actions service client for %s: %w", repo, err)
	}
	if calls != nil {
		// The client's *http.Client is exported: count above its retries.
		c.Client.Transport = countingTransport{next: c.Client.Transport, calls: calls}
	}
	return client{c}, nil
}
