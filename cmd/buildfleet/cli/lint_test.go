package cli

import (
	"regexp"
	"strings"
	"testing"
)

const workflowsDir = "../../../workflows/"

func TestLintShippedWorkflows(t *testing.T) {
	code, out, errs := run(t, nil, "lint", "--config", example, workflowsDir+"buildbots.yml", workflowsDir+"quick-demo.yml")
	if code != 0 || out != "" {
		t.Fatalf("lint: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if !strings.Contains(errs, "2 file(s) ok") {
		t.Errorf("stderr = %q", errs)
	}
}

func TestLintFindings(t *testing.T) {
	file := workflowsDir + "lint/testdata/runs-on-unserved.yml"
	code, out, errs := run(t, []string{"BUILDFLEET_CONFIG=" + example}, "lint", file)
	if code != 1 {
		t.Fatalf("lint of a broken workflow: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("stdout has %d lines, want 1 finding:\n%s", len(lines), out)
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(file) + `:34:15: runs-on \[[^]]*\] does not come from the builders input.* \[buildfleet-runs-on\]$`)
	if !re.MatchString(lines[0]) {
		t.Errorf("finding = %q, want file:line:col: message [rule]", lines[0])
	}
	if !strings.Contains(errs, "1 finding(s)") {
		t.Errorf("stderr = %q", errs)
	}
}

func TestLintBadConfig(t *testing.T) {
	cfg := writeFile(t, "bad.yaml", "pools: [{name: x, lables: [y]}]\n")
	code, out, errs := run(t, nil, "lint", "--config", cfg, workflowsDir+"quick-demo.yml")
	if code != 1 || out != "" || !strings.Contains(errs, "lables") {
		t.Errorf("lint with a bad config: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestLintMissingFile(t *testing.T) {
	code, _, errs := run(t, nil, "lint", "--config", example, "no-such-workflow.yml")
	if code != 1 || !strings.Contains(errs, "no-such-workflow.yml") {
		t.Errorf("lint of a missing file: exit %d, stderr %q", code, errs)
	}
}
