// Package github is buildfleet's only door to GitHub. Every call goes through
// one stack of http.RoundTrippers, from the top: authentication (token or App
// installation), retries and rate limits (retryTransport), call counting
// (metricsTransport), the network. Retries sit below authentication so that a
// retried request carries the same credentials, and above the counter so
// that every attempt is counted as the call it is.
//
// The typed methods (Role, RemoveLabel, DispatchWorkflow, ...) are what the
// rest of buildfleet uses; they turn GitHub's answers into this package's
// errors (ErrNotFound, ErrInvalid, ErrConflict, ErrRateLimited) so that no
// go-github type leaks out.
package github

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v60/github"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/buildfleet/buildfleet/config"
)

// Client is an authenticated GitHub REST client.
type Client struct {
	gh *gh.Client
	// noRunDetails remembers that the server rejected return_run_details
	// on a workflow dispatch (GitHub Enterprise Server before the feature).
	noRunDetails atomic.Bool
	// App reports whether the client authenticates as a GitHub App
	// installation (and so may write check runs).
	App bool
	// budget is Options.Budget, for WriteRoom.
	budget *Budget
}

// Options are the parts a Client is built from besides the config.
type Options struct {
	// Transport is the base transport (default http.DefaultTransport).
	Transport http.RoundTripper
	// Registerer receives the call metrics; nil means none.
	Registerer prometheus.Registerer
	// Retry bounds retries and waits; zero fields take the defaults.
	Retry Retry
	// Budget, when set, is the credential's write budget: every attempt
	// of a content-creating call waits for it (see Budget).
	Budget *Budget
}

// AttemptTimeout bounds the wait for GitHub's answer to one attempt.
const AttemptTimeout = 10 * time.Second

// New builds a client from the config; it does not contact GitHub.
func New(c config.GitHub, o Options) (*Client, error) {
	base := o.Transport
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Bound each attempt: a call that hangs is retried or reported
		// instead of holding its loop, and callers know how long an
		// unanswered request may still take effect (AttemptTimeout).
		t.ResponseHeaderTimeout = AttemptTimeout
		base = t
	}
	rt := newRetryTransport(newMetricsTransport(base, o.Registerer), o.Retry, o.Registerer)
	rt.budget = o.Budget
	api := c.APIURL
	if !strings.HasSuffix(api, "/") {
		api += "/"
	}
	var hc *http.Client
	app := c.App.Configured()
	if app {
		key, err := os.ReadFile(c.App.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("github.app.private_key_file: %w", err)
		}
		itr, err := ghinstallation.New(rt, c.App.ID, c.App.InstallationID, key)
		if err != nil {
			return nil, fmt.Errorf("github.app.private_key_file: %w", err)
		}
		itr.BaseURL = strings.TrimSuffix(api, "/")
		hc = &http.Client{Transport: itr}
	} else {
		hc = &http.Client{Transport: rt}
	}
	cl, err := gh.NewClient(hc).WithEnterpriseURLs(api, api)
	if err != nil {
		return nil, fmt.Errorf("github.api_url: %w", err)
	}
	if !app {
		cl = cl.WithAuthToken(c.Token.Reveal())
	}
	// WithEnterpriseURLs appends api/v3/ to hosts other than api.github.com;
	// keep the configured root exactly as given.
	cl.BaseURL.Path = mustPath(api)
	cl.UploadURL = cl.BaseURL
	return &Client{gh: cl, App: app, budget: o.Budget}, nil
}

// WriteRoom reports whether a content-creating call made with ctx would
// go now without waiting for the write budget (true without a budget).
func (c *Client) WriteRoom(ctx context.Context) bool {
	return c.budget == nil || c.budget.Room(ctx)
}

func mustPath(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return "/"
	}
	rest := raw[i+3:]
	if j := strings.Index(rest, "/"); j >= 0 {
		return rest[j:]
	}
	return "/"
}

// REST returns the go-github client for the packages that make calls.
func (c *Client) REST() *gh.Client { return c.gh }

// Ping checks that GitHub answers and accepts the credentials.
func (c *Client) Ping(ctx context.Context) error {
	if _, _, err := c.gh.RateLimit.Get(ctx); err != nil {
		return fmt.Errorf("reaching github: %w", err)
	}
	return nil
}
