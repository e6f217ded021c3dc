package cli

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/buildfleet/buildfleet/workflows/lint"
)

// defaultWorkflows is what `buildfleet lint` checks when given no file: the
// workflows shipped in the repository, run from its top directory.
const defaultWorkflows = "workflows/*.yml"

func (a *app) lintCmd() *cobra.Command {
	shellcheck := "shellcheck"
	cmd := &cobra.Command{
		Use:   "lint [WORKFLOW...]",
		Short: "Check workflow files against the fleet: actionlint plus buildfleet's rules",
		Long: "Check workflow files with actionlint (the pools' labels declared as self-hosted\n" +
			"runner labels, shellcheck on run: scripts) and buildfleet's rules: runs-on\n" +
			"comes from the builders input, the workflow_dispatch inputs are what the manager sends,\n" +
			"inputs are not interpolated into run: scripts, the checkout pins the sha input,\n" +
			"and run-name carries the request id.\n\n" +
			"Findings go to stdout as file:line:col: message [rule]; the exit status is 1\n" +
			"when there are any. Without arguments it checks " + defaultWorkflows + ".",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.loadFleet()
			if err != nil {
				return &exitError{code: 1, msg: fmt.Sprintf("loading config: %v", err)}
			}
			files := args
			if len(files) == 0 {
				if files, err = filepath.Glob(defaultWorkflows); err != nil {
					return err
				}
				if len(files) == 0 {
					return &exitError{code: 1, msg: "no workflow files given and none match " + defaultWorkflows}
				}
			}
			findings, err := lint.LintWith(c, files, lint.Options{Shellcheck: shellcheck})
			if err != nil {
				return &exitError{code: 1, msg: err.Error()}
			}
			for _, f := range findings {
				fmt.Fprintln(a.stdout, f)
			}
			if len(findings) > 0 {
				fmt.Fprintf(a.stderr, "buildfleet lint: %d finding(s) in %d file(s)\n", len(findings), len(files))
				return &exitError{code: 1}
			}
			fmt.Fprintf(a.stderr, "buildfleet lint: %d file(s) ok\n", len(files))
			return nil
		},
	}
	cmd.Flags().StringVar(&shellcheck, "shellcheck", shellcheck, `shellcheck command run on every run: script, as actionlint does ("" turns it off)`)
	return cmd
}
