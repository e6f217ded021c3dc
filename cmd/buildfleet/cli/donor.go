package cli

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/buildfleet/buildfleet/nomad/donor"
)

// donorCmd groups what a donor of a host needs.
func (a *app) donorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "donor",
		Short: "Tools for people who lend a host to the fleet",
	}
	cmd.AddCommand(a.donorConfigCmd())
	return cmd
}

func (a *app) donorConfigCmd() *cobra.Command {
	var o donor.Options
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the Nomad client configuration of a donated host",
		Long: "Print the Nomad client agent configuration (HCL) of a donated host: node\n" +
			"pool and meta for placement, slots (node_max_allocs), a drain on shutdown\n" +
			"longer than a refleak build, the task driver and TLS file locations.\n" +
			"Nothing secret is included. With --config, the drain deadline follows the\n" +
			"longest refleak job_timeout, --servers defaults to the host of\n" +
			"nomad.address on port 4647, the node pool and driver are those of the\n" +
			"pools of the platform and tiers, and every flag is checked against those\n" +
			"pools (platform, tiers, node pool, driver, datacenter, min_isolation).\n" +
			"See docs/donors.md.",
		Example: "  buildfleet donor config --platform linux-x86_64 --tiers quick,refleak --slots 2 \\\n" +
			"    --owner \"Jane Doe\" --contact jane@example.org --servers nomad.example.org:4647 \\\n" +
			"    > /etc/nomad.d/client.hcl",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.configFile != "" || a.envConfig() != "" {
				c, err := a.loadFleet()
				if err != nil {
					return err
				}
				o.DrainDeadline = donor.DrainDeadline(c)
				if len(o.Servers) == 0 {
					if s := serverFromAddress(c.Nomad.Address); s != "" {
						o.Servers = []string{s}
					}
				}
				if o, err = o.ForFleet(c); err != nil {
					return &exitError{code: 2, msg: usageErrors(err)}
				}
			}
			b, err := donor.Render(o)
			if err != nil {
				return &exitError{code: 2, msg: usageErrors(err)}
			}
			_, err = a.stdout.Write(b)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Platform, "platform", "", "the host's platform: <os>-<arch>, e.g. linux-x86_64, macos-arm64, windows-x86_64, freebsd-x86_64 (required)")
	f.StringSliceVar(&o.Tiers, "tiers", nil, "tiers the host builds, comma-separated: quick, refleak (required)")
	f.IntVar(&o.Slots, "slots", 0, fmt.Sprintf("builds that may run at once, 1..%d (required)", donor.MaxSlots))
	f.StringVar(&o.Owner, "owner", "", "who lends the host (required)")
	f.StringVar(&o.Contact, "contact", "", "e-mail address or https URL to reach the owner (required)")
	f.StringSliceVar(&o.Servers, "servers", nil, "Nomad servers' RPC addresses host:port, comma-separated (from the operator)")
	f.StringVar(&o.NodePool, "node-pool", "", "Nomad node pool (default: the pools' node_pool with --config, else buildfleet-<platform>)")
	f.StringVar(&o.Driver, "driver", "", "task driver: raw_exec, exec or docker (both Linux only) (default: the pools' driver with --config, else raw_exec)")
	f.StringVar(&o.Isolation, "isolation", "", "isolation the host declares: none, user, container, vm (default: the driver's; vm for a VM that serves builds only)")
	f.StringVar(&o.Datacenter, "datacenter", "", "Nomad datacenter (default dc1)")
	f.StringVar(&o.Name, "name", "", "node name (default: the host name)")
	return cmd
}

// envConfig is the config file named by BUILDFLEET_CONFIG, if any.
func (a *app) envConfig() string {
	file := ""
	for _, kv := range a.env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == EnvPrefix+"_CONFIG" {
			file = v
		}
	}
	return file
}

// serverFromAddress turns the manager's Nomad HTTP address into the RPC
// address clients join: same host, port 4647.
func serverFromAddress(addr string) string {
	u, err := url.Parse(addr)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	return net.JoinHostPort(u.Hostname(), "4647")
}

// usageErrors lists every problem on its own line.
func usageErrors(err error) string {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		s := "donor config:"
		for _, e := range j.Unwrap() {
			s += "\n  " + e.Error()
		}
		return s
	}
	return "donor config: " + err.Error()
}
