package cli

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/buildfleet/buildfleet/manager"
	"github.com/buildfleet/buildfleet/manager/github"
)

func (a *app) serveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the manager: webhook intake, fleet, reports, status page",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.load(false)
			if err != nil {
				return err
			}
			log := a.logger(c)
			reg := prometheus.NewRegistry()
			var limits []github.Limit
			for _, l := range c.GitHub.WriteLimits {
				limits = append(limits, github.Limit{N: l.Requests, Per: l.Per.D()})
			}
			m, err := manager.New(manager.Options{
				Config:         c,
				Logger:         log,
				Registry:       reg,
				Version:        version(),
				RetryEvery:     c.Reconcile.RetryEvery.D(),
				RecoverEvery:   c.Reconcile.LabelScanEvery.D(),
				RecoverMinAge:  c.Reconcile.LabelMinAge.D(),
				ReconcileEvery: c.Reconcile.JobsEvery.D(),
				WriteLimits:    limits,
			})
			if err != nil {
				return err
			}
			return m.Run(cmd.Context())
		},
	}
	fs := cmd.Flags()
	a.bindFlag(fs, "listen", "listen", "", "address to serve on (host:port)")
	a.bindFlag(fs, "public_url", "public-url", "", "URL where GitHub and people reach this manager")
	a.bindFlag(fs, "store.path", "store", "", "SQLite database file")
	a.bindFlag(fs, "github.api_url", "github-api-url", "", "GitHub REST API root")
	a.bindFlag(fs, "nomad.address", "nomad-address", "", "Nomad HTTP API address")
	return cmd
}
