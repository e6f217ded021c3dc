package manager

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/nomadtest"
	"github.com/buildfleet/buildfleet/manager/github"
	"github.com/buildfleet/buildfleet/manager/nomad"
)

// BenchmarkLabelToRunnerStarted measures label added → runner process
// started on Nomad (the runner script's first line writes a timestamp),
// against two baselines measured in the same run on the same agent:
//
//   - bare-pool: a bare dispatch of the runner job itself (a copy of the
//     pool's parameterized job, its JIT variable written by hand) → its
//     task's first output. This is `nomad job dispatch` → running for the
//     very job buildfleet starts; the ratio to it is buildfleet's own cost,
//     and the figure the target (DESIGN.md: at most 1.2×) is read against.
//   - bare: a minimal parameterized raw_exec job with no template → its
//     task's first output: stricter, it also charges buildfleet for Nomad
//     rendering the JIT config from its Variable.
//
// It also reports the manager's own overhead, queued webhook stored → Nomad
// dispatch issued (p99), from the runners table.
//
// Each round labels the PR of a one-builder tier, waits for the runner to
// start and the job to finish, then dispatches the bare job once: the two
// paths alternate so that the agent's state drifts alike for both.
func BenchmarkLabelToRunnerStarted(b *testing.B) {
	stamps := runnerDir(b, 0o1777)
	script := "STAMPS=" + stamps + "\n" +
		`date +%s%N > "$STAMPS/$NOMAD_META_runner_name"` + "\n" +
		`exec "$GHSIM" runner --jitconfig-file "$JIT_CONFIG_FILE"` + "\n"
	pools := []config.Pool{fleetPools()[0], fleetPools()[3]}
	// About six GitHub writes a round: at GitHub's 80 a minute, twenty
	// rounds would wait on the write budget (BenchmarkBurst's figure).
	h, ag := newFleetHarnessWith(b, fleetSetup{script: script, pools: pools, writeLimits: []github.Limit{{N: 1 << 20, Per: time.Minute}}})
	registerBare(b, ag, stamps)
	nc, barePool := registerBarePool(b, h, pools[0], script)
	ctx := context.Background()

	// The bare dispatch alone varies by ±30%, more when the shared machine
	// is busy: medians of 20.
	rounds := max(b.N, 20)
	var label, bare, barePoolD []time.Duration
	var toWebhook, inNomad []time.Duration // label → queued webhook stored; dispatch → runner started
	start := time.Now()
	b.ResetTimer()
	for i := range rounds {
		t0 := time.Now()
		if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
			b.Fatal(err)
		}
		var name string
		eventually(b, "a runner started", func() bool {
			rs, _ := h.m.store.ListRequests(ctx, 1)
			if len(rs) == 0 || len(label) == i && rs[0].CreatedAt.Before(t0) {
				return false
			}
			rows, _ := h.m.store.RunnersOfRequest(ctx, rs[0].ID)
			for _, r := range rows {
				if _, err := os.Stat(filepath.Join(stamps, r.RunnerName)); err == nil {
					name = r.RunnerName
					return true
				}
			}
			return false
		})
		started := stampOf(b, filepath.Join(stamps, name))
		label = append(label, started.Sub(t0))
		if r, err := h.m.store.RunnerByName(ctx, name); err == nil {
			toWebhook = append(toWebhook, r.ReceivedAt.Sub(t0))
			inNomad = append(inNomad, started.Sub(r.DispatchedAt))
		}
		eventually(b, "the job finished", func() bool {
			rs, _ := h.m.store.ListRequests(ctx, 1)
			rows, _ := h.m.store.RunnersOfRequest(ctx, rs[0].ID)
			for _, r := range rows {
				if r.State != "completed" {
					return false
				}
			}
			return len(rows) > 0
		})

		id := fmt.Sprintf("bare-%d", i)
		t0 = time.Now()
		if _, _, err := ag.Client.Jobs().Dispatch("bare", map[string]string{"id": id}, nil, "", nil); err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(stamps, id)
		eventually(b, "the bare task started", func() bool { _, err := os.Stat(path); return err == nil })
		bare = append(bare, stampOf(b, path).Sub(t0))

		// The same runner job, dispatched by hand as the fleet does it.
		r := nomad.Runner{Name: fmt.Sprintf("bare-pool-%d", i), GitHubJobID: int64(900000 + i), Attempt: 1, JITConfig: "not-a-jit-config"}
		t0 = time.Now()
		if _, err := nc.DispatchChild(ctx, barePool, r); err != nil {
			b.Fatal(err)
		}
		if err := nc.WriteRunnerSecret(ctx, barePool, r); err != nil {
			b.Fatal(err)
		}
		path = filepath.Join(stamps, r.Name)
		eventually(b, "the bare pool task started", func() bool { _, err := os.Stat(path); return err == nil })
		barePoolD = append(barePoolD, stampOf(b, path).Sub(t0))
	}
	b.StopTimer()

	lm, bm, pm := median(label), median(bare), median(barePoolD)
	b.ReportMetric(float64(lm.Nanoseconds()), "label-to-runner-ns")
	b.ReportMetric(float64(pm.Nanoseconds()), "bare-pool-dispatch-ns")
	b.ReportMetric(float64(lm)/float64(pm), "x-vs-bare-pool-dispatch")
	b.ReportMetric(float64(bm.Nanoseconds()), "bare-dispatch-ns")
	b.ReportMetric(float64(lm)/float64(bm), "x-vs-bare-dispatch")
	lat, err := h.m.store.DispatchLatencies(ctx, start)
	if err == nil && len(lat) > 0 {
		slices.Sort(lat)
		p99 := lat[(len(lat)*99+99)/100-1]
		b.ReportMetric(float64(p99.Nanoseconds()), "webhook-to-dispatch-p99-ns")
		b.ReportMetric(float64(p99)/float64(time.Millisecond), "webhook-to-dispatch-p99-ms")
		b.ReportMetric(float64(lat[(len(lat)+1)/2-1])/float64(time.Millisecond), "webhook-to-dispatch-p50-ms")
	}
	b.Logf("%d rounds: label → runner %v (median; all %v), bare pool dispatch → task %v (all %v), bare dispatch → task %v (all %v)", rounds, lm, label, pm, barePoolD, bm, bare)
	if len(toWebhook) > 0 {
		b.Logf("label → queued webhook stored %v, runner dispatch → runner started %v (medians)", median(toWebhook), median(inNomad))
	}
}

// registerBarePool registers a copy of a pool's runner job under another
// ID, which the manager does not know, with the same runner script.
func registerBarePool(b *testing.B, h *harness, pool config.Pool, script string) (*nomad.Client, config.Pool) {
	bin, err := ghsimBinary()
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(runnerDir(b, 0o755), "runner.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\nGHSIM="+bin+"\n"+script), 0o755); err != nil {
		b.Fatal(err)
	}
	nc, err := nomad.New(h.cfg.Nomad)
	if err != nil {
		b.Fatal(err)
	}
	pool.Name, pool.NomadJob = "bare-pool", "bare-pool"
	job, err := nomad.RenderPoolJob(pool, nomad.RenderOptions{Command: "/bin/sh", Args: []string{path}, KillTimeout: 2 * time.Second,
		Resources: map[string]nomad.Resources{config.TierQuick: {CPU: 100, MemoryMB: 64}}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := nc.RegisterPool(context.Background(), job); err != nil {
		b.Fatal(err)
	}
	return nc, pool
}

// registerBare registers the baseline: a parameterized raw_exec batch job
// whose task writes a timestamp named by its meta id, and nothing else.
func registerBare(b *testing.B, ag *nomadtest.Agent, stamps string) {
	job := api.NewBatchJob("bare", "bare", "global", 50)
	job.Datacenters = []string{"*"}
	pool := nomadtest.HostNodePool()
	job.NodePool = &pool // the test agent's node pool, where the pools' runners go too
	job.ParameterizedJob = &api.ParameterizedJobConfig{MetaRequired: []string{"id"}}
	tg := api.NewTaskGroup("g", 1)
	attempts, mode := 0, "fail"
	tg.RestartPolicy = &api.RestartPolicy{Attempts: &attempts, Mode: &mode}
	task := api.NewTask("t", "raw_exec")
	task.Config = map[string]any{"command": "/bin/sh", "args": []string{"-c", `date +%s%N > "` + stamps + `/$NOMAD_META_id"`}}
	cpu, mem := 100, 64
	task.Resources = &api.Resources{CPU: &cpu, MemoryMB: &mem}
	tg.AddTask(task)
	job.AddTaskGroup(tg)
	if _, _, err := ag.Client.Jobs().Register(job, nil); err != nil {
		b.Fatal(err)
	}
}

// stampOf reads a `date +%s%N` timestamp (written by a task that may not
// have finished writing: retried briefly).
func stampOf(b *testing.B, path string) time.Time {
	for range 50 {
		raw, err := os.ReadFile(path)
		if n, perr := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64); err == nil && perr == nil {
			return time.Unix(0, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatalf("no timestamp in %s", path)
	return time.Time{}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
