package lint_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildfleet/buildfleet/cmd/buildfleet/cli"
	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/testenv"
	"github.com/buildfleet/buildfleet/workflows/lint"
)

func exampleConfig(t *testing.T) config.Config {
	t.Helper()
	c, err := cli.LoadConfig(cli.LoadOptions{File: "../../config/example.yaml", SkipSecretFiles: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestShippedWorkflows: the workflows in workflows/ pass with the example
// fleet.
func TestShippedWorkflows(t *testing.T) {
	testenv.Shellcheck(t)
	files, err := filepath.Glob("../*.yml")
	if err != nil || len(files) < 2 {
		t.Fatalf("workflows: %v %v", files, err)
	}
	fs, err := lint.Lint(exampleConfig(t), files)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		t.Errorf("unexpected finding: %s", f)
	}
}

type want struct {
	line, col int
	rule      string
	msg       string // a part of the message
}

// TestBroken: each copy in testdata/ breaks one thing and gets exactly the
// findings listed, at the line and column of the mistake.
func TestBroken(t *testing.T) {
	testenv.Shellcheck(t)
	cfg := exampleConfig(t)
	tests := []struct {
		file string
		want []want
	}{
		{"runs-on-unserved.yml", []want{
			{34, 15, lint.RuleRunsOn, `runs-on [self-hosted, buildfleet, macos, arm64, refleak] does not come from the builders input`},
		}},
		{"matrix-unserved.yml", []want{
			{35, 14, lint.RuleRunsOn, `runs-on ${{ matrix.builder.labels }} does not come from the builders input`},
		}},
		{"injection.yml", []want{
			{63, 34, lint.RuleInjection, `${{ inputs.sha }} in run: puts the sha input into the shell script (script injection)`},
		}},
		{"injection-matrix.yml", []want{
			{63, 25, lint.RuleInjection, `${{ matrix.builder.name }} in run: puts a matrix value made from the dispatch inputs into the shell script`},
		}},
		{"missing-input.yml", []want{
			{3, 27, "expression", `property "request_id" is not defined`}, // actionlint, in run-name
			{6, 3, lint.RuleInputs, `workflow_dispatch input "request_id" is missing`},
			{41, 23, "expression", `property "request_id" is not defined`}, // actionlint, in env
		}},
		{"extra-input.yml", []want{
			{24, 7, lint.RuleInputs, `workflow_dispatch input "python_version" is required but the manager never sends it`},
		}},
		{"syntax.yml", []want{
			{37, 14, "syntax-check", "could not parse as YAML: mapping values are not allowed in this context"},
		}},
		{"no-pin.yml", []want{
			{76, 9, lint.RuleSHAPin, `job "build" fetches code but never checks out the sha input`},
		}},
		{"run-name.yml", []want{
			{3, 11, lint.RuleRunName, "run-name does not contain ${{ inputs.request_id }}"},
		}},
		{"shellcheck.yml", []want{
			{64, 9, "shellcheck", `SC2209`}, // what upstream actionlint reports
		}},
		{"job-name.yml", []want{
			{34, 11, lint.RuleJobName, "the job's name must be ${{ matrix.builder.name }}"},
		}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".yml"), func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			fs, err := lint.Lint(cfg, []string{path})
			if err != nil {
				t.Fatal(err)
			}
			if len(fs) != len(tt.want) {
				t.Errorf("%d findings, want %d:", len(fs), len(tt.want))
				for _, f := range fs {
					t.Log(f)
				}
				return
			}
			for i, w := range tt.want {
				f := fs[i]
				if f.File != path || f.Line != w.line || f.Col != w.col || f.Rule != w.rule || !strings.Contains(f.Message, w.msg) {
					t.Errorf("finding %d:\n got %s\nwant %s:%d:%d: …%s… [%s]", i, f, path, w.line, w.col, w.msg, w.rule)
				}
			}
		})
	}
}

func TestFindingString(t *testing.T) {
	f := lint.Finding{File: "w.yml", Line: 3, Col: 7, Rule: "r", Message: "m"}
	if got := f.String(); got != "w.yml:3:7: m [r]" {
		t.Errorf("String() = %q", got)
	}
}

// TestShellcheckRequired: without shellcheck the linter would report less
// than actionlint; it says so instead of passing quietly.
func TestShellcheckRequired(t *testing.T) {
	_, err := lint.LintWith(exampleConfig(t), []string{"../quick-demo.yml"}, lint.Options{Shellcheck: "no-such-shellcheck"})
	if err == nil || !strings.Contains(err.Error(), "no-such-shellcheck") {
		t.Errorf("err = %v, want shellcheck not found", err)
	}
}

func TestNoPools(t *testing.T) {
	if _, err := lint.Lint(config.Config{}, []string{"../quick-demo.yml"}); err == nil {
		t.Error("no error for a config without pools")
	}
}

func TestUnreadableFile(t *testing.T) {
	if _, err := lint.Lint(exampleConfig(t), []string{"testdata/no-such-file.yml"}); err == nil {
		t.Error("no error for a missing file")
	}
}

func TestDispatchInputs(t *testing.T) {
	got := strings.Join(lint.DispatchInputs[:], ",")
	if got != "pr,sha,tier,request_id,builders" {
		t.Errorf("DispatchInputs = %s", got)
	}
}
