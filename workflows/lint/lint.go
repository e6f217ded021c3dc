// Package lint checks the workflow files that the buildfleet manager
// dispatches. It runs actionlint (as a library, with the fleet's pool labels
// declared as self-hosted runner labels and shellcheck on run: scripts) and
// adds buildfleet's own rules, which catch the mistakes that make a build
// never start, run on a runner another job could take, or build the wrong
// commit: a runs-on that does not come from the builders input, dispatch inputs that do
// not match what the manager sends, inputs interpolated into shell scripts,
// a checkout that does not pin the requested commit, and a run name the
// manager cannot find.
package lint

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/rhysd/actionlint"
	"gopkg.in/yaml.v3"

	"github.com/buildfleet/buildfleet/config"
)

// The workflow_dispatch inputs the manager sends with every dispatch.
const (
	// InputPR is the pull request number, decimal.
	InputPR = "pr"
	// InputSHA is the PR head commit at the moment of the label, 40 hex
	// digits: the only commit the workflow may build.
	InputSHA = "sha"
	// InputTier is the tier of the request (config.TierQuick, ...).
	InputTier = "tier"
	// InputRequestID is the manager's id of the request; the workflow puts
	// it in its run-name so that the manager can find the run.
	InputRequestID = "request_id"
	// InputBuilders is a JSON array of Builder: the pools that build.
	InputBuilders = "builders"
)

// DispatchInputs lists every input the manager sends, in the order the
// documentation gives them. It is an array so that it is copied, not shared.
var DispatchInputs = [...]string{InputPR, InputSHA, InputTier, InputRequestID, InputBuilders}

// Builder is one element of the builders input: a pool and the runs-on
// labels of its runners. The workflow's matrix iterates over these objects,
// names each job after Name and runs it on Labels.
type Builder struct {
	Name   string   `json:"name"`
	Labels []string `json:"labels"`
}

// Finding is one problem in a workflow file.
type Finding struct {
	File    string
	Line    int // 1-based
	Col     int // 1-based
	Rule    string
	Message string
}

// String formats a finding the way compilers and actionlint do, so editors
// can jump to it: file:line:col: message [rule].
func (f Finding) String() string {
	return fmt.Sprintf("%s:%d:%d: %s [%s]", f.File, f.Line, f.Col, f.Message, f.Rule)
}

// Lint checks each workflow file against the fleet of cfg. Findings come
// sorted by file (in the order given), line and column. The error is for
// what prevents checking at all (an unreadable file); problems in a file are
// findings, a YAML syntax error included.
func Lint(cfg config.Config, files []string) ([]Finding, error) {
	return LintWith(cfg, files, Options{Shellcheck: "shellcheck"})
}

// Options tune LintWith.
type Options struct {
	// Shellcheck is the shellcheck command that actionlint runs on every
	// run: script (as upstream actionlint does), a name on PATH or a path.
	// A missing command is an error: without it the linter would report
	// less than actionlint. Empty turns the check off.
	Shellcheck string
}

// LintWith is Lint with options.
func LintWith(cfg config.Config, files []string, o Options) ([]Finding, error) {
	if o.Shellcheck != "" {
		p, err := exec.LookPath(o.Shellcheck)
		if err != nil {
			return nil, fmt.Errorf("shellcheck %q not found (install shellcheck, or turn the check off): %w", o.Shellcheck, err)
		}
		o.Shellcheck = p
	}
	if len(cfg.Pools) == 0 {
		return nil, errors.New("the config declares no pools: no runs-on label set could be served")
	}
	alcfg, err := writeActionlintConfig(cfg)
	if err != nil {
		return nil, err
	}
	defer os.Remove(alcfg)
	var out []Finding
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading workflow: %w", err)
		}
		fs, err := lintFile(cfg, alcfg, o.Shellcheck, file, src)
		if err != nil {
			return nil, fmt.Errorf("linting %s: %w", file, err)
		}
		out = append(out, fs...)
	}
	return out, nil
}

// presetLabels are the labels every self-hosted runner carries, which
// actionlint knows without configuration.
var presetLabels = []string{"self-hosted", "x64", "arm", "arm64", "linux", "macos", "windows"}

// writeActionlintConfig writes actionlint's configuration to a temporary
// file and returns its name. The configuration declares every label of every
// pool as a self-hosted runner label. actionlint takes its configuration
// only from a file; a file given explicitly also wins over any
// .github/actionlint.yaml of the repository checked, so the result does not
// depend on where the workflow lives.
func writeActionlintConfig(cfg config.Config) (string, error) {
	var labels []string
	for _, p := range cfg.Pools {
		for _, l := range p.Labels {
			if containsFold(presetLabels, l) {
				continue // actionlint knows them; listing them twice clutters its messages
			}
			if !containsFold(labels, l) {
				labels = append(labels, l)
			}
		}
	}
	// A map, not actionlint.Config: an empty config-variables list would make
	// actionlint reject every vars.* reference, an absent one disables that.
	b, err := yaml.Marshal(map[string]any{"self-hosted-runner": map[string]any{"labels": labels}})
	if err != nil {
		return "", fmt.Errorf("encoding actionlint config: %w", err)
	}
	if _, err := actionlint.ParseConfig(b); err != nil {
		return "", fmt.Errorf("actionlint config: %w", err)
	}
	f, err := os.CreateTemp("", "buildfleet-actionlint-*.yaml")
	if err != nil {
		return "", fmt.Errorf("actionlint config: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("actionlint config: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("actionlint config: %w", err)
	}
	return f.Name(), nil
}

// lintFile runs actionlint with buildfleet's rules added on one file. The
// rules are made per file: they keep state and read the file's source for
// positions inside block scalars.
func lintFile(cfg config.Config, alcfg, shellcheck, file string, src []byte) ([]Finding, error) {
	l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{
		ConfigFile: alcfg,
		Shellcheck: shellcheck,
		OnRulesCreated: func(rules []actionlint.Rule) []actionlint.Rule {
			return append(rules, newRules(cfg, src)...)
		},
	})
	if err != nil {
		return nil, err
	}
	errs, err := l.Lint(file, src, nil)
	if err != nil {
		return nil, err
	}
	out := make([]Finding, 0, len(errs))
	for _, e := range errs {
		msg := e.Message
		if e.Kind == "runner-label" {
			// The fleet's labels come from the pools, not from actionlint.yaml.
			msg = strings.Replace(msg, "set list of labels in actionlint.yaml config file", "add it to a pool's labels in the buildfleet config", 1)
		}
		out = append(out, Finding{File: file, Line: e.Line, Col: e.Column, Rule: e.Kind, Message: msg})
	}
	return out, nil
}

func containsFold(list []string, s string) bool {
	for _, l := range list {
		if strings.EqualFold(l, s) {
			return true
		}
	}
	return false
}
