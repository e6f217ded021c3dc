// Package nomad is buildfleet's only door to Nomad: it builds the nomad/api
// client from the config and turns its errors into buildfleet's.
package nomad

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/hashicorp/nomad/api"

	"github.com/buildfleet/buildfleet/config"
)

// Client talks to one Nomad region and namespace.
type Client struct {
	api    *api.Client
	ns     string
	logger *slog.Logger
	hosts  hostsCache
	names  nodeNames
	addr   string
	calls  *calls
}

// New builds a client; it does not contact Nomad. Only c decides the
// address, token and TLS: the NOMAD_* variables that the api package would
// read itself are resolved into c by the command line, with the same
// precedence as every other setting, so none is applied behind its back.
func New(c config.Nomad) (*Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = c.Address
	cfg.SecretID = c.Token.Reveal()
	cfg.Namespace = c.Namespace
	cfg.Region = c.Region
	cfg.TLSConfig = &api.TLSConfig{
		CACert:        c.CAFile,
		ClientCert:    c.ClientCertFile,
		ClientKey:     c.ClientKeyFile,
		TLSServerName: c.TLSServerName,
	}
	for key, file := range map[string]string{"nomad.ca_file": c.CAFile, "nomad.client_cert_file": c.ClientCertFile, "nomad.client_key_file": c.ClientKeyFile} {
		if file == "" {
			continue
		}
		if _, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	cs := &calls{}
	hc, err := countedHTTPClient(cfg.TLSConfig, cs)
	if err != nil {
		return nil, fmt.Errorf("nomad tls: %w", err)
	}
	cfg.HttpClient = hc
	cl, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("nomad client for %s: %w", c.Address, err)
	}
	ns := c.Namespace
	if ns == "" {
		ns = "default"
	}
	return &Client{api: cl, ns: ns, addr: c.Address, calls: cs}, nil
}

// SetLogger sets the logger of the watcher's warnings (none by default).
func (c *Client) SetLogger(l *slog.Logger) { c.logger = l }

// Namespace is the namespace the client's jobs and variables live in.
func (c *Client) Namespace() string { return c.ns }

func (c *Client) log() *slog.Logger {
	if c.logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c.logger
}

// API returns the underlying nomad/api client for the packages that drive
// jobs; they stay within this package's namespace and region.
func (c *Client) API() *api.Client { return c.api }

// Ping checks that the cluster answers and has a leader.
func (c *Client) Ping(ctx context.Context) error {
	q := (&api.QueryOptions{}).WithContext(ctx)
	leader, err := c.api.Status().RegionLeader(q.Region)
	if err != nil {
		return c.reachErr(err)
	}
	if leader == "" {
		return fmt.Errorf("reaching nomad: no leader")
	}
	return nil
}
