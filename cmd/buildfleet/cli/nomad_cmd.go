package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/nomad"
)

// nomadFlags are the render options the pool config does not carry.
type nomadFlags struct {
	pool       string
	command    string
	args       []string
	ghsim      string
	user       string
	format     string
	withPolicy bool
}

func (f *nomadFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.pool, "pool", "", "only this pool (default: all pools)")
	fs.StringVar(&f.command, "runner-command", "", "runner command (default: the platform's run-runner bootstrap)")
	fs.StringArrayVar(&f.args, "runner-arg", nil, "runner argument (repeat); ${NOMAD_SECRETS_DIR}/jit is the JIT config file")
	fs.StringVar(&f.ghsim, "ghsim", "", "use the ghsim stand-in runner at this path (demo and tests)")
	fs.StringVar(&f.user, "runner-user", "", "host user the runner task runs as; leave it empty: a root agent on Linux gives every runner a uid of its own (isolate.sh), which a task user prevents")
}

func (f *nomadFlags) options(c config.Config) (nomad.RenderOptions, error) {
	o := nomad.RenderOptions{Namespace: c.Nomad.Namespace, User: f.user}
	switch {
	case f.ghsim != "" && f.command != "":
		return o, &exitError{code: 2, msg: "--ghsim and --runner-command exclude each other"}
	case f.ghsim != "":
		o.Command, o.Args = nomad.GhsimRunnerCommand(f.ghsim)
	case f.command != "":
		o.Command, o.Args = f.command, f.args
	case len(f.args) > 0:
		return o, &exitError{code: 2, msg: "--runner-arg needs --runner-command"}
	}
	return o, nil
}

func (f *nomadFlags) pools(c config.Config) ([]config.Pool, error) {
	if f.pool == "" {
		return c.Pools, nil
	}
	p := c.Pool(f.pool)
	if p == nil {
		names := make([]string, len(c.Pools))
		for i, p := range c.Pools {
			names[i] = p.Name
		}
		return nil, &exitError{code: 2, msg: fmt.Sprintf("no pool %q (pools: %s)", f.pool, strings.Join(names, ", "))}
	}
	return []config.Pool{*p}, nil
}

func (a *app) nomadCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nomad",
		Short: "Render or register the runner pool jobs on Nomad",
	}

	var rf nomadFlags
	render := &cobra.Command{
		Use:   "render",
		Short: "Print each pool's parameterized Nomad job (HCL, or JSON for the API)",
		Long: "Print each pool's parameterized Nomad job. The HCL can be checked with\n" +
			"`nomad job validate` and registered with `nomad job run`; `buildfleet nomad\n" +
			"apply` does that and also attaches the job's variable policy (--policy prints it).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.loadFleet()
			if err != nil {
				return err
			}
			o, err := rf.options(c)
			if err != nil {
				return err
			}
			pools, err := rf.pools(c)
			if err != nil {
				return err
			}
			for i, p := range pools {
				if i > 0 && rf.format == "hcl" {
					fmt.Fprintln(a.stdout)
				}
				if err := a.renderPool(p, o, rf.format); err != nil {
					return err
				}
				if rf.withPolicy {
					fmt.Fprintf(a.stdout, "\n# ACL policy %s, attached to job %s:\n%s", nomad.RunnerPolicyName(p.NomadJob),
						p.NomadJob, nomad.RunnerPolicy(o.Namespace, p.NomadJob))
				}
			}
			return nil
		},
	}
	rf.register(render)
	render.Flags().StringVar(&rf.format, "format", "hcl", "hcl or json (the API's {\"Job\": …} form)")
	render.Flags().BoolVar(&rf.withPolicy, "policy", false, "also print each job's variable ACL policy")

	var af nomadFlags
	apply := &cobra.Command{
		Use:   "apply",
		Short: "Register every pool's job and variable policy with the configured Nomad",
		Long: "Register every pool's parameterized job and attach its variable policy,\n" +
			"after creating the namespace and the node pools the jobs name when they are\n" +
			"missing (or naming exactly what an operator must create when the token may\n" +
			"not). Needs a management token (submit-job and acl:write): NOMAD_TOKEN wins\n" +
			"over the config's nomad.token, which is the manager's narrower token.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.loadFleet()
			if err != nil {
				return err
			}
			o, err := af.options(c)
			if err != nil {
				return err
			}
			pools, err := af.pools(c)
			if err != nil {
				return err
			}
			nc := c.Nomad
			if tok := a.getenv("NOMAD_TOKEN"); tok != "" {
				nc.Token = config.Secret(tok)
			} else if nc.Token == "" && nc.TokenFile != "" {
				b, err := os.ReadFile(nc.TokenFile)
				if err != nil {
					return fmt.Errorf("nomad.token_file: %w", err)
				}
				nc.Token = config.Secret(strings.TrimSpace(string(b)))
			}
			client, err := nomad.New(nc)
			if err != nil {
				return err
			}
			var nodePools []string
			for _, p := range pools {
				pl, err := config.PlacementOf(p)
				if err != nil {
					return err
				}
				nodePools = append(nodePools, pl.NodePool)
			}
			pre, err := client.EnsurePrerequisites(cmd.Context(), o.Namespace, nodePools)
			for _, p := range pre {
				state := "exists"
				if p.Created {
					state = "created"
				}
				fmt.Fprintf(a.stdout, "%s %s: %s\n", p.Kind, p.Name, state)
			}
			if err != nil {
				if nomad.IsMissing(err) {
					return &exitError{code: 1, msg: err.Error()}
				}
				return err
			}
			failed := false
			for _, p := range pools {
				job, err := nomad.RenderPoolJob(p, o)
				if err != nil {
					return err
				}
				ch, err := client.RegisterPool(cmd.Context(), job)
				if err != nil {
					fmt.Fprintf(a.stderr, "%s: %v\n", p.Name, err)
					failed = true
					continue
				}
				fmt.Fprintf(a.stdout, "%s: job %s %s, policy %s %s\n", p.Name, ch.JobID, ch.Job,
					nomad.RunnerPolicyName(ch.JobID), ch.Policy)
			}
			if failed {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	af.register(apply)
	cmd.AddCommand(render, apply)
	return cmd
}

func (a *app) renderPool(p config.Pool, o nomad.RenderOptions, format string) error {
	switch format {
	case "hcl":
		s, err := nomad.RenderPoolHCL(p, o)
		if err != nil {
			return err
		}
		fmt.Fprint(a.stdout, s)
		return nil
	case "json":
		job, err := nomad.RenderPoolJob(p, o)
		if err != nil {
			return err
		}
		b, err := json.MarshalIndent(map[string]any{"Job": job}, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s\n", b)
		return nil
	}
	return &exitError{code: 2, msg: fmt.Sprintf("--format must be hcl or json, not %q", format)}
}

// getenv looks a variable up in the command's environment.
func (a *app) getenv(key string) string {
	for _, kv := range a.env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}
