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

// TestRenderPlacementFromPool checks that the job takes node pool,
// datacenters, constraints and driver from the pool config alone.
func TestRenderPlacementFromPool(t *testing.T) {
	tests := []struct {
		name       string
		pool       config.Pool
		nodePool   string
		driver     string
		config     string
		constraint string
	}{
		{"defaults", config.Pool{Name: "l", Platform: "linux-x86_64", Tier: "quick"},
			"buildfleet-linux-x86_64", "raw_exec", "command", ""},
		{"exec with user minimum", config.Pool{Name: "l", Platform: "linux-aarch64", Tier: "quick", Driver: "exec", MinIsolation: "user"},
			"buildfleet-linux-aarch64", "exec", "command", "${meta.buildfleet_isolation} set_contains_any user,container,vm"},
		{"docker in an own node pool", config.Pool{Name: "d", Platform: "linux-x86_64", Tier: "refleak", Driver: "docker", NodePool: "docker-hosts", MinIsolation: "container"},
			"docker-hosts", "docker", "image", "${meta.buildfleet_isolation} set_contains_any container,vm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job, err := RenderPoolJob(tt.pool, RenderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			task := job.TaskGroups[0].Tasks[0]
			if *job.NodePool != tt.nodePool || task.Driver != tt.driver || task.Config[tt.config] == nil {
				t.Errorf("node pool %s, driver %s, config %v", *job.NodePool, task.Driver, task.Config)
			}
			var cons []string
			for _, c := range job.Constraints {
				cons = append(cons, c.LTarget+" "+c.Operand+" "+c.RTarget)
			}
			last := cons[len(cons)-1]
			if tt.constraint == "" && strings.Contains(last, "isolation") || tt.constraint != "" && last != tt.constraint {
				t.Errorf("constraints %q, want last %q", cons, tt.constraint)
			}
			hcl, err := RenderPoolHCL(tt.pool, RenderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(hcl, `driver       = "`+tt.driver+`"`) || !strings.Contains(hcl, `node_pool   = "`+tt.nodePool+`"`) {
				t.Errorf("HCL:\n%s", hcl)
			}
		})
	}
}
