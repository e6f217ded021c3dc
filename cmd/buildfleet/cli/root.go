// Package cli is buildfleet's command line: cobra commands, config
// resolution with viper (the only place viper is used) and logging set-up.
// main only wires signals and the process exit code.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/buildfleet/buildfleet/config"
)

// app carries what every command shares.
type app struct {
	env            []string
	stdout, stderr io.Writer
	configFile     string
	flags          map[string]*pflag.Flag
}

// Execute runs the command line and returns the process exit code: 0 ok,
// 1 a failure or findings, 2 bad usage.
func Execute(ctx context.Context, args, env []string, stdout, stderr io.Writer) int {
	a := &app{env: env, stdout: stdout, stderr: stderr, flags: map[string]*pflag.Flag{}}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		var ec exitCoder
		if asExit(err, &ec) {
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(stderr, "buildfleet:", msg)
			}
			return ec.ExitCode()
		}
		fmt.Fprintln(stderr, "buildfleet:", err)
		return 1
	}
	return 0
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "buildfleet",
		Short:         "Build pull requests on a fleet of donated machines, on a label",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&a.configFile, "config", "c", "", "config file (YAML); also BUILDFLEET_CONFIG")
	a.bindFlag(root.PersistentFlags(), "log.format", "log-format", "", "log format: text or json")
	a.bindFlag(root.PersistentFlags(), "log.level", "log-level", "", "log level: debug, info, warn, error")
	root.AddCommand(a.serveCmd(), a.triggerCmd(), a.statusCmd(), a.versionCmd(), a.configCmd(), a.donorCmd(), a.lintCmd(), a.nomadCmd())
	return root
}

// bindFlag declares a string flag that overrides a config key when given.
func (a *app) bindFlag(fs *pflag.FlagSet, key, name, short, usage string) {
	if short != "" {
		fs.StringP(name, short, "", usage)
	} else {
		fs.String(name, "", usage)
	}
	a.flags[key] = fs.Lookup(name)
}

// load resolves the configuration of a command.
func (a *app) load(skipSecretFiles bool) (config.Config, error) {
	return LoadConfig(LoadOptions{File: a.configPath(), Env: a.env, Flags: a.flags, SkipSecretFiles: skipSecretFiles})
}

// configPath is --config, else BUILDFLEET_CONFIG.
func (a *app) configPath() string {
	file := a.configFile
	if file == "" {
		for _, kv := range a.env {
			if len(kv) > len(EnvPrefix)+8 && kv[:len(EnvPrefix)+8] == EnvPrefix+"_CONFIG=" {
				file = kv[len(EnvPrefix)+8:]
			}
		}
	}
	return file
}

// loadFleet resolves the configuration of a command that reads the fleet
// (pools, repositories, Nomad) but not the manager's GitHub credentials.
func (a *app) loadFleet() (config.Config, error) {
	return LoadConfig(LoadOptions{File: a.configPath(), Env: a.env, Flags: a.flags, FleetOnly: true})
}

// logger builds the process logger from the resolved config.
func (a *app) logger(c config.Config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(a.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(a.stderr, opts))
}
