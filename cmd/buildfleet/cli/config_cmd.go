package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

func (a *app) configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check or show the configuration",
	}
	var readFiles bool
	validate := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a config file; every problem is listed with its key",
		Long: "Check a config file with the environment applied; every problem is listed\n" +
			"with its key. Secret files (*_file) are not read unless --read-secret-files,\n" +
			"so a file meant for another machine can be checked here.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.configFile = args[0]
			if _, err := a.load(!readFiles); err != nil {
				return &exitError{code: 1, msg: fmt.Sprintf("%s is not valid:\n%v", args[0], err)}
			}
			fmt.Fprintf(a.stdout, "%s: ok\n", args[0])
			return nil
		},
	}
	validate.Flags().BoolVar(&readFiles, "read-secret-files", false, "also read the *_file secrets")
	print := &cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration (defaults, file, environment, flags) with secrets redacted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.load(true)
			if err != nil {
				return err
			}
			enc := yaml.NewEncoder(a.stdout)
			enc.SetIndent(2)
			if err := enc.Encode(c); err != nil {
				return fmt.Errorf("encoding config: %w", err)
			}
			return enc.Close()
		},
	}
	cmd.AddCommand(validate, print)
	return cmd
}
