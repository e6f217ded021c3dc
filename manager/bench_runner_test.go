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
)

// BenchmarkLabelToRunnerStarted measures label added → runner process
// started on Nomad (the runner script's first line writes a timestamp),
// against its physical limit measured in the same run on the same agent:
// a bare Jobs().Dispatch of a parameterized raw_exec job → its task's first
// output. Target (DESIGN.md): at most 1.2× the bare dispatch. It also
// reports the manager's own overhead, queued webhook stored → Nomad
// dispatch issued (p99), from the runners table.
//
// Each round labels the PR of a one-builder tier, waits for the runner to
// start and the job to finish, then dispatches the bare job once: the two
// paths alternate so that the agent's state drifts alike for both.
func BenchmarkLabelToRunnerStarted(b *testing.B) {
	stamps := b.TempDir()
	script := "STAMPS=" + stamps + "\n" +
		`date +%s%N > "$STAMPS/$NOMAD_META_runner_name"` + "\n" +
		`exec "$GHSIM" runner --jitconfig-file "$NOMAD_SECRETS_DIR/jit"` + "\n"
	pools := []config.Pool{fleetPools()[0], fleetPools()[3]}
	h, ag := newFleetHarnessWith(b, fleetSetup{script: script, pools: pools})
	registerBare(b, ag, stamps)
	ctx := context.Background()

	rounds := max(b.N, 10) // the bare dispatch alone varies by ±30%: medians of 10
	var label, bare []time.Duration
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
	}
	b.StopTimer()

	lm, bm := median(label), median(bare)
	b.ReportMetric(float64(lm.Nanoseconds()), "label-to-runner-ns")
	b.ReportMetric(float64(bm.Nanoseconds()), "bare-dispatch-ns")
	b.ReportMetric(float64(lm)/float64(bm), "x-vs-bare-dispatch")
	lat, err := h.m.store.DispatchLatencies(ctx, start)
	if err == nil && len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[(len(lat)*99+99)/100-1].Nanoseconds()), "webhook-to-dispatch-p99-ns")
	}
	b.Logf("%d rounds: label → runner %v (median; all %v), bare dispatch → task %v (all %v)", rounds, lm, label, bm, bare)
	if len(toWebhook) > 0 {
		b.Logf("label → queued webhook stored %v, runner dispatch → runner started %v (medians)", median(toWebhook), median(inNomad))
	}
}

// registerBare registers the baseline: a parameterized raw_exec batch job
// whose task writes a timestamp named by its meta id, and nothing else.
func registerBare(b *testing.B, ag *nomadtest.Agent, stamps string) {
	job := api.NewBatchJob("bare", "bare", "global", 50)
	job.Datacenters = []string{"*"}
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
