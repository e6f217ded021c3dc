package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/buildfleet/buildfleet/cmd/buildfleet/cli"
	"github.com/buildfleet/buildfleet/internal/ghsim"
)

func TestOperatorTrigger(t *testing.T) {
	gh := ghsim.New(ghsim.Options{})
	if _, err := gh.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	wf, _ := filepath.Abs("../../workflows")
	must(t, gh.CreateRepo(ghsim.RepoSpec{Owner: "python", Name: "cpython", Org: true, WorkflowsDir: wf}))
	head := strings.Repeat("7e", 20)
	pr, err := gh.OpenPR("python/cpython", ghsim.PRSpec{Author: "contributor", HeadSHA: head})
	must(t, err)
	closed, err := gh.OpenPR("python/cpython", ghsim.PRSpec{Author: "contributor"})
	must(t, err)
	must(t, gh.ClosePR("python/cpython", closed, "contributor", false))

	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	must(t, os.WriteFile(cfg, []byte(`
store: {path: `+filepath.Join(dir, "bf.db")+`}
github: {api_url: "`+gh.URL()+`/", token: t, webhook_secret: s}
repositories: [{name: python/cpython, workflow: quick-demo.yml}]
pools:
  - {name: q, platform: linux-x86_64, tier: quick, labels: [self-hosted, buildfleet, linux, x86_64, quick, release], stable: true}
  - {name: r, platform: linux-x86_64, tier: refleak, labels: [self-hosted, buildfleet, linux, x86_64, refleak], stable: true}
`), 0o600))
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := cli.Execute(context.Background(), append([]string{"--config", cfg}, args...), nil, &out, &errb)
		return code, out.String() + errb.String()
	}

	code, out := run("trigger", "--repo", "python/cpython", "--pr", strconv.Itoa(pr), "--tier", "quick", "--as", "ops")
	if code != 0 || !strings.Contains(out, "dispatched") || !strings.Contains(out, head) {
		t.Fatalf("trigger: exit %d\n%s", code, out)
	}
	if n := count(gh, "POST", "/dispatches"); n != 1 {
		t.Errorf("%d dispatches, want 1", n)
	}
	if n := count(gh, "POST", "/comments"); n != 1 {
		t.Errorf("%d comments, want 1", n)
	}

	for name, args := range map[string][]string{
		"closed PR":    {"trigger", "--repo", "python/cpython", "--pr", strconv.Itoa(closed), "--tier", "quick"},
		"missing PR":   {"trigger", "--repo", "python/cpython", "--pr", "99", "--tier", "quick"},
		"unknown repo": {"trigger", "--repo", "python/other", "--pr", "1", "--tier", "quick"},
		"unknown tier": {"trigger", "--repo", "python/cpython", "--pr", "1", "--tier", "nightly"},
		"no pr":        {"trigger", "--repo", "python/cpython", "--tier", "quick"},
		"negative pr":  {"trigger", "--repo", "python/cpython", "--pr", "-3"},
	} {
		if code, out := run(args...); code == 0 {
			t.Errorf("%s: exit 0, want an error\n%s", name, out)
		}
	}
	if n := count(gh, "POST", "/dispatches"); n != 1 {
		t.Errorf("refused triggers dispatched: %d dispatches, want still 1", n)
	}
}
