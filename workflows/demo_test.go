package workflows_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/buildfleet/buildfleet/cmd/buildfleet/cli"
	"github.com/buildfleet/buildfleet/internal/ghsim"
	"github.com/buildfleet/buildfleet/workflows/lint"
)

// TestQuickDemoRunsInGhsim dispatches quick-demo.yml with the inputs the
// manager sends for the example fleet's quick tier, runs every job on a
// stand-in runner holding the pool's labels, and expects one successful
// job per pool, named after it.
func TestQuickDemoRunsInGhsim(t *testing.T) {
	cfg, err := cli.LoadConfig(cli.LoadOptions{File: "../config/example.yaml", SkipSecretFiles: true})
	if err != nil {
		t.Fatal(err)
	}
	var builders []lint.Builder
	for _, p := range cfg.StablePools("quick") {
		builders = append(builders, lint.Builder{Name: p.Name, Labels: p.Labels})
	}
	const sha = "0123456789abcdef0123456789abcdef01234567"
	for _, j := range runDemo(t, sha, builders) {
		if j.GetConclusion() != "success" {
			t.Errorf("job %s: status %s, conclusion %q", j.GetName(), j.GetStatus(), j.GetConclusion())
		}
	}
}

// TestQuickDemoRefusesBadSHA: a sha input that is not 40 hex digits fails
// the job before anything is "built".
func TestQuickDemoRefusesBadSHA(t *testing.T) {
	jobs := runDemo(t, "main; echo pwned", []lint.Builder{{Name: "linux-x86_64-quick", Labels: []string{"self-hosted", "buildfleet", "linux", "x86_64", "quick"}}})
	if c := jobs[0].GetConclusion(); c != "failure" {
		t.Errorf("job conclusion %q, want failure", c)
	}
}

// TestBuildbotsDispatchesInGhsim: buildbots.yml stays in the subset ghsim
// understands; its jobs are named and labelled after the builders. (Its
// steps build CPython, so they are not run here.)
func TestBuildbotsDispatchesInGhsim(t *testing.T) {
	b := []lint.Builder{{Name: "linux-x86_64-refleak", Labels: []string{"self-hosted", "buildfleet", "linux", "x86_64", "refleak"}}}
	jobs := dispatch(t, "buildbots.yml", "0123456789abcdef0123456789abcdef01234567", "refleak", b, false)
	if len(jobs) != 1 || jobs[0].GetName() != b[0].Name || strings.Join(jobs[0].Labels, ",") != strings.Join(b[0].Labels, ",") {
		t.Errorf("jobs = %v", jobs)
	}
}

// runDemo dispatches quick-demo.yml through ghsim, runs each job on a
// stand-in runner and returns the finished jobs.
func runDemo(t *testing.T, sha string, builders []lint.Builder) []*github.WorkflowJob {
	t.Helper()
	return dispatch(t, "quick-demo.yml", sha, "quick", builders, true)
}

func dispatch(t *testing.T, file, sha, tier string, builders []lint.Builder, runJobs bool) []*github.WorkflowJob {
	t.Helper()
	bj, err := json.Marshal(builders)
	if err != nil {
		t.Fatal(err)
	}

	s := ghsim.New(ghsim.Options{})
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.CreateRepo(ghsim.RepoSpec{Owner: "python", Name: "cpython", DefaultBranch: "main", WorkflowsDir: "."}); err != nil {
		t.Fatal(err)
	}
	inputs := map[string]any{
		lint.InputPR: "7", lint.InputSHA: sha, lint.InputTier: tier,
		lint.InputRequestID: "req-42", lint.InputBuilders: string(bj),
	}
	runID, err := s.Dispatch("python/cpython", file, inputs, "buildfleet-bot")
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := github.NewClient(nil).WithAuthToken("token")
	c.BaseURL, _ = c.BaseURL.Parse(base + "/")
	run, _, err := c.Actions.GetWorkflowRunByID(ctx, "python", "cpython", runID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(run.GetDisplayTitle()+run.GetName(), "req-42") {
		t.Errorf("run name %q / title %q lacks the request id", run.GetName(), run.GetDisplayTitle())
	}
	jobs, _, err := c.Actions.ListWorkflowJobs(ctx, "python", "cpython", runID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs.Jobs) != len(builders) {
		t.Fatalf("%d jobs, want one per builder (%d)", len(jobs.Jobs), len(builders))
	}
	if !runJobs {
		return jobs.Jobs
	}
	for i, j := range jobs.Jobs {
		if j.GetName() != builders[i].Name || strings.Join(j.Labels, ",") != strings.Join(builders[i].Labels, ",") {
			t.Errorf("job %d: %q on %v, want %q on %v", i, j.GetName(), j.Labels, builders[i].Name, builders[i].Labels)
		}
		jit, _, err := c.Actions.GenerateRepoJITConfig(ctx, "python", "cpython", &github.GenerateJITConfigRequest{
			Name: "runner-" + j.GetName(), RunnerGroupID: 1, Labels: j.Labels})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := ghsim.RunRunner(ctx, ghsim.RunnerOptions{JITConfig: jit.GetEncodedJITConfig(), WorkDir: t.TempDir(), Out: &out}); err != nil {
			t.Fatalf("runner for %s: %v\n%s", j.GetName(), err, out.String())
		}
		t.Logf("job %s:\n%s", j.GetName(), out.String())
	}
	jobs, _, err = c.Actions.ListWorkflowJobs(ctx, "python", "cpython", runID, nil)
	if err != nil {
		t.Fatal(err)
	}
	return jobs.Jobs
}
