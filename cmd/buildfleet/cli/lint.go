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
	return &cobra.Command{
		Use:   "lint [WORKFLOW...]",
		Short: "Check workflow files against the fleet: actionlint plus buildfleet's rules",
		Long: "Check workflow files with actionlint (the pools' labels declared as self-hosted\n" +
			"runner labels) and buildfleet's rules: every runs-on label set is served by a\n" +
			"pool of the config, the workflow_dispatch inputs are what the manager sends,\n" +
			"inputs are not interpolated into run: scripts, the checkout pins the sha input,\n" +
			"and run-name carries the request id.\n\n" +
			"Findings go to stdout as file:line:col: message [rule]; the exit status is 1\n" +
			"when there are any. Without arguments it checks " + defaultWorkflows + ".",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.load(true)
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
			findings, err := lint.Lint(c, files)
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
}
