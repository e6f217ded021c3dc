package cli

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/store"
	"github.com/buildfleet/buildfleet/manager/trigger"
)

// triggerCmd requests a build as an operator: the same path as a label
// (repository configured, tier known, PR open, comment, dispatch pinned to
// the PR's current head SHA), recorded in the manager's store with the
// actor operator:<name>, so the running manager follows the run.
func (a *app) triggerCmd() *cobra.Command {
	var repo, tier, as string
	var pr int
	cmd := &cobra.Command{
		Use:   "trigger --repo OWNER/REPO --pr N --tier TIER",
		Short: "Request a build of a PR's current head as an operator",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pr <= 0 {
				return &exitError{code: 2, msg: "--pr must be a pull request number"}
			}
			if repo == "" || tier == "" {
				return &exitError{code: 2, msg: "--repo and --tier are required"}
			}
			c, err := a.load(false)
			if err != nil {
				return err
			}
			if as == "" {
				as = operatorName()
			}
			st, err := store.Open(cmd.Context(), c.Store.Path)
			if err != nil {
				return err
			}
			defer st.Close()
			gh, err := github.New(c.GitHub, github.Options{})
			if err != nil {
				return err
			}
			tr := trigger.New(trigger.Options{Config: c, Store: st, GitHub: gh, Logger: a.logger(c)})
			r, err := tr.Operator(cmd.Context(), repo, pr, tier, as)
			if err != nil && r.ID == "" {
				return err
			}
			fmt.Fprintf(a.stdout, "request %s: %s PR #%d at %s, tier %s, by operator:%s: %s", r.ID, r.Repo, r.PR, r.SHA, r.Tier, as, r.State)
			if r.RunID != 0 {
				fmt.Fprintf(a.stdout, " (run %s)", strconv.FormatInt(r.RunID, 10))
			}
			fmt.Fprintln(a.stdout)
			if errors.Is(err, store.ErrConflict) {
				fmt.Fprintln(a.stdout, "the running manager took the request's next step; it finishes it")
				return nil
			}
			if err != nil {
				return fmt.Errorf("not finished, the manager will retry: %w", err)
			}
			if r.State == trigger.StateFailed {
				return &exitError{code: 1, msg: r.Reason}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&repo, "repo", "", "repository, owner/repo (must be configured)")
	fs.IntVar(&pr, "pr", 0, "pull request number")
	fs.StringVar(&tier, "tier", "quick", "tier to build (quick, refleak, …)")
	fs.StringVar(&as, "as", "", "operator name recorded as the actor (default: the OS user)")
	return cmd
}

func operatorName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return strings.ReplaceAll(u.Username, " ", "_")
	}
	if n := os.Getenv("USER"); n != "" {
		return n
	}
	return "unknown"
}
