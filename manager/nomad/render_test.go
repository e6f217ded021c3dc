package nomad

import (
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
)

func TestRenderPoolJob(t *testing.T) {
	p := config.Pool{Name: "w", Platform: "windows-x86_64", Tier: config.TierRefleak, NomadJob: "runner-w"}
	job, err := RenderPoolJob(p, RenderOptions{Namespace: "buildfleet"})
	if err != nil {
		t.Fatal(err)
	}
	if *job.Type != "batch" || job.ParameterizedJob.Payload != "forbidden" || *job.Namespace != "buildfleet" {
		t.Errorf("job basics: %s %+v %s", *job.Type, job.ParameterizedJob, *job.Namespace)
	}
	var cons []string
	for _, c := range job.Constraints {
		cons = append(cons, c.LTarget+" "+c.Operand+" "+c.RTarget)
	}
	if got, want := strings.Join(cons, "; "), "${attr.kernel.name} = windows; ${attr.cpu.arch} = amd64; ${meta.buildfleet_tiers} set_contains refleak"; got != want {
		t.Errorf("constraints %q, want %q", got, want)
	}
	tg := job.TaskGroups[0]
	if *tg.RestartPolicy.Attempts != 0 || *tg.ReschedulePolicy.Attempts != 0 || *tg.ReschedulePolicy.Unlimited ||
		*tg.Disconnect.Replace || *tg.Disconnect.LostAfter != time.Hour {
		t.Errorf("single-use policies: %+v %+v %+v", tg.RestartPolicy, tg.ReschedulePolicy, tg.Disconnect)
	}
	task := tg.Tasks[0]
	if *task.KillTimeout > 30*time.Second || *task.Resources.MemoryMB != 8192 {
		t.Errorf("kill timeout %v, memory %d", *task.KillTimeout, *task.Resources.MemoryMB)
	}
	tmpl := task.Templates[0]
	if *tmpl.DestPath != "secrets/jit" || *tmpl.Perms != "0600" || *tmpl.ChangeMode != "noop" ||
		!strings.Contains(*tmpl.EmbeddedTmpl, `"buildfleet/runners/runner-w/%s" (env "NOMAD_META_runner_name")`) {
		t.Errorf("template %s %s %s %s", *tmpl.DestPath, *tmpl.Perms, *tmpl.ChangeMode, *tmpl.EmbeddedTmpl)
	}
	if _, err := RenderPoolJob(config.Pool{Name: "x", Platform: "plan9-mips", Tier: "quick"}, RenderOptions{}); err == nil {
		t.Errorf("bad platform accepted")
	}
}

func TestRunnerNamesAndTokens(t *testing.T) {
	if got := IdempotencyToken(42, 2); got != "gh-42-a2" {
		t.Errorf("token %q", got)
	}
	if got := RunnerPolicyName("runner-linux-x86_64"); got != "buildfleet-pool-runner-linux-x86-64" {
		t.Errorf("policy name %q", got)
	}
	for _, bad := range []string{"", "a/b", "a b", "../x", strings.Repeat("x", 65)} {
		if runnerNameRE.MatchString(bad) {
			t.Errorf("runner name %q accepted", bad)
		}
	}
}
