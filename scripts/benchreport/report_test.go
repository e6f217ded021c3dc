package main

import (
	"os"
	"strings"
	"testing"
)

func TestParseSample(t *testing.T) {
	f, err := os.Open("testdata/sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	if res.CPU != "Intel(R) Xeon(R) CPU @ 2.20GHz" {
		t.Errorf("cpu = %q", res.CPU)
	}
	if got := res.Metrics["BenchmarkLabelToRunnerStarted"]["x-vs-bare-pool-dispatch"]; got != 1.1 {
		t.Errorf("ratio = %v", got)
	}
	if got := res.Metrics["BenchmarkReconcileWithHistory/history=10000"]["rss-MB"]; got != 160 {
		t.Errorf("rss = %v", got)
	}
	if got := res.Metrics["BenchmarkIntake"]["deliveries/s"]; got != 2500 {
		t.Errorf("intake = %v", got)
	}
	if len(res.Failed) != 2 {
		t.Errorf("failed lines = %q", res.Failed)
	}
}

func TestRowsAndWrite(t *testing.T) {
	f, _ := os.Open("testdata/sample.txt")
	defer f.Close()
	res, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Row{}
	for _, r := range res.Rows(figures) {
		byName[r.Name] = r
	}
	check := func(name, measured, baseline, ratio, ok string) {
		t.Helper()
		r, found := byName[name]
		if !found {
			t.Fatalf("no row %q", name)
		}
		if r.Measured != measured || r.Baseline != baseline || r.Ratio != ratio || r.OK != ok {
			t.Errorf("%s: got %q %q %q %q, want %q %q %q %q", name, r.Measured, r.Baseline, r.Ratio, r.OK, measured, baseline, ratio, ok)
		}
	}
	check("label → runner started (median of 20)", "1100 ms", "1000 ms", "1.10×", "yes")
	check("webhook → Nomad dispatch, p99", "19.0 ms", "—", "—", "yes")
	check("webhook → Nomad dispatch, p50", "7.00 ms", "—", "—", "—")
	check("burst of 100 requests × 2 builders: drain time vs the write-budget bound", "110 s", "90.0 s", "1.22×", "yes")
	check("GitHub writes per builder in that burst", "4.50", "4.50", "1.00×", "yes")
	check("GitHub writes per request in that burst", "9.00", "9.00", "1.00×", "yes")
	check("webhook intake", "2500 /s", "250 /s", "10.0×", "yes")
	check("reconcile tick, 1,000 finished jobs", "310 µs", "330 µs", "1.03×", "yes")
	check("reconcile tick, 10,000 finished jobs", "900 µs", "300 µs", "3.00×", "no")
	check("RSS with 10,000 tracked jobs", "160 MB", "—", "—", "no")
	check("status page /grid, 10,000 requests", "missing from this run", "—", "—", "no")
	check("reconcile tick, 100,000 finished jobs", "450 µs", "300 µs", "1.50×", "yes")

	var b strings.Builder
	m := Machine{Date: "2026-11-28 09:00 UTC", CPU: res.CPU, Cores: "2", Memory: "8.0 GiB", Go: "go1.26", Nomad: "Nomad v1.10.5", Command: "make bench", Load: "3.10, 2.50, 2.00"}
	if err := Write(&b, m, res.Rows(figures), res.Failed); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| figure | measured | baseline | ratio | target | ok? |",
		"| label → runner started (median of 20) | 1100 ms | 1000 ms | 1.10× | ratio ≤ 1.2× | yes |",
		"| webhook intake | 2500 /s | 250 /s | 10.0× | ≥ 2000 deliveries/s | yes |",
		"- Nomad: Nomad v1.10.5", "- Cores: 2", "- Date: 2026-11-28 09:00 UTC",
		"- Load average (1, 5, 15 min) as the run ended: 3.10, 2.50, 2.00",
		"## Failures in this run", "`--- FAIL: BenchmarkPages/history=10000`",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("BENCHMARKS.md lacks %q:\n%s", want, out)
		}
	}
}
