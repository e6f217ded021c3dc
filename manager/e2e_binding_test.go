package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/ghsim"
	"github.com/buildfleet/buildfleet/manager/trigger"
)

// ghJob is a job as ghsim's record of a run shows it.
type ghJob struct {
	ID         int64    `json:"id"`
	Status     string   `json:"status"`
	Conclusion string   `json:"conclusion"`
	Labels     []string `json:"labels"`
	RunnerName string   `json:"runner_name"`
}

// jobsOf returns the jobs of the runs whose request_id input is id.
func (h *harness) jobsOf(requestID string) []ghJob {
	var out []ghJob
	for _, r := range h.runs() {
		in, _ := r["inputs"].(map[string]any)
		if in["request_id"] != requestID {
			continue
		}
		b, _ := json.Marshal(r["jobs"])
		var js []ghJob
		_ = json.Unmarshal(b, &js)
		out = append(out, js...)
	}
	return out
}

// dispatchForeign queues a run nobody asked buildfleet for, whose one job
// asks for labels: what a workflow in a fork's pull request can do.
func (h *harness) dispatchForeign(id string, labels []string) {
	h.t.Helper()
	builders, _ := json.Marshal([]map[string]any{{"name": "foreign", "labels": labels}})
	if _, err := h.gh.Dispatch(e2eRepo, "quick-demo.yml", map[string]any{
		"pr": "1", "sha": h.sha, "tier": "quick", "request_id": id, "builders": string(builders),
	}, "contributor"); err != nil {
		h.t.Fatal(err)
	}
}

// jitConfig registers a JIT runner with labels, as the manager does.
func (h *harness) jitConfig(name string, labels []string) string {
	h.t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "runner_group_id": 1, "labels": labels})
	req, _ := http.NewRequest("POST", h.gh.URL()+"/repos/"+e2eRepo+"/actions/runners/generate-jitconfig", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		JIT string `json:"encoded_jit_config"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 201 {
		h.t.Fatalf("generate-jitconfig: %d %v", resp.StatusCode, err)
	}
	return v.JIT
}

// TestPoolLabelsLetAForeignJobStealTheRunner shows the attack that binding
// labels close, in the simulator: a runner registered with its pool's
// labels (how buildfleet registered runners before) takes the oldest queued
// job asking for them, a foreign one queued just before the job it was
// started for.
func TestPoolLabelsLetAForeignJobStealTheRunner(t *testing.T) {
	gh, pr, sha := startGHSim(t)
	h := &harness{t: t, gh: gh, pr: pr, sha: sha, cfg: e2eConfig(t, gh.URL())}
	pool := h.cfg.Pools[0]
	h.dispatchForeign("foreign", pool.Labels)
	// "Ours", old style: the builders input carries the pool's labels.
	builders, _ := json.Marshal([]trigger.Builder{{Name: pool.Name, Labels: pool.Labels}})
	if _, err := gh.Dispatch(e2eRepo, "quick-demo.yml", map[string]any{
		"pr": "1", "sha": sha, "tier": "quick", "request_id": "ours", "builders": string(builders),
	}, "core"); err != nil {
		t.Fatal(err)
	}
	ours := h.jobsOf("ours")
	if len(ours) != 1 || ours[0].Status != "queued" {
		t.Fatalf("our jobs %+v", ours)
	}
	jit := h.jitConfig("bf-old-style", pool.Labels)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ghsim.RunRunner(ctx, ghsim.RunnerOptions{JITConfig: jit, WorkDir: t.TempDir(), Out: io.Discard, MaxWait: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	foreign := h.jobsOf("foreign")
	if len(foreign) != 1 || foreign[0].RunnerName != "bf-old-style" || foreign[0].Conclusion != "success" {
		t.Errorf("foreign job %+v, want it run by the runner started for ours", foreign)
	}
	if j := h.jobsOf("ours")[0]; j.Status != "queued" || j.RunnerName != "" {
		t.Errorf("our job %+v, want it still queued", j)
	}
}

// TestBindingLabelKeepsForeignJobsOffOurRunners: a foreign job with the
// pool's labels is queued just before a labelled PR's job. The manager's
// runner carries only the builder's binding label, so it takes our job;
// the foreign job gets no buildfleet runner at all.
func TestBindingLabelKeepsForeignJobsOffOurRunners(t *testing.T) {
	pool := fleetPools()[0]
	h, _ := newFleetHarnessWith(t, fleetSetup{pools: []config.Pool{pool, fleetPools()[3]}})
	h.dispatchForeign("foreign", pool.Labels)
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.waitFinal(1, 90*time.Second)
	if s := h.finalStatuses()["buildfleet/"+pool.Name]; s.State != "success" {
		t.Fatalf("status %+v, want success", s)
	}
	reqs, _ := h.m.store.ListRequests(context.Background(), 1)
	ours := h.jobsOf(reqs[0].ID)
	if len(ours) != 1 || !strings.HasPrefix(ours[0].RunnerName, "bf-") || ours[0].Conclusion != "success" {
		t.Fatalf("our jobs %+v, want one run by a bf- runner", ours)
	}
	label := ours[0].Labels
	if len(label) != 1 || !strings.HasPrefix(label[0], trigger.BindingPrefix) {
		t.Errorf("our job's labels %v, want only a binding label", label)
	}
	if j := h.jobsOf("foreign"); len(j) != 1 || j[0].Status != "queued" || j[0].RunnerName != "" {
		t.Errorf("foreign job %+v, want it still queued, without a runner", j)
	}
	// Every workflow_job delivery handled (the foreign job's too), and
	// one JIT config in all: ours.
	eventually(t, "workflow_job deliveries handled", func() bool {
		un, _ := h.m.store.Unprocessed(context.Background(), 10, "workflow_job")
		return len(un) == 0
	})
	if n := h.calls("POST", "/generate-jitconfig"); n != 1 {
		t.Errorf("%d JIT configs, want 1", n)
	}
}
