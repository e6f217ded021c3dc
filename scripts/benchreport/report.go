package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Results holds the metrics of one `go test -bench` run, keyed by
// benchmark name (without the -GOMAXPROCS suffix) and then by unit.
type Results struct {
	CPU     string // the "cpu:" line go test prints, when present
	Metrics map[string]map[string]float64
	Failed  []string // "--- FAIL" and "FAIL" lines, to be shown rather than hidden
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// Parse reads the plain text output of `go test -bench` (several packages
// concatenated). A benchmark line is its name, its iteration count, then
// value/unit pairs as b.ReportMetric and -benchmem print them.
func Parse(r io.Reader) (*Results, error) {
	res := &Results{Metrics: map[string]map[string]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "cpu:"):
			res.CPU = strings.TrimSpace(strings.TrimPrefix(line, "cpu:"))
		case strings.HasPrefix(line, "--- FAIL"), strings.HasPrefix(line, "FAIL"):
			res.Failed = append(res.Failed, line)
		case strings.HasPrefix(line, "Benchmark"):
			f := strings.Fields(line)
			if len(f) < 4 || len(f)%2 != 0 {
				continue // a benchmark's name alone (its log follows), or a sub-benchmark header
			}
			if _, err := strconv.Atoi(f[1]); err != nil {
				continue
			}
			name := procSuffix.ReplaceAllString(f[0], "")
			m := res.Metrics[name]
			if m == nil {
				m = map[string]float64{}
				res.Metrics[name] = m
			}
			for i := 2; i+1 < len(f); i += 2 {
				v, err := strconv.ParseFloat(f[i], 64)
				if err != nil {
					return nil, fmt.Errorf("benchmark line %q: value %q: %w", line, f[i], err)
				}
				m[f[i+1]] = v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading benchmark output: %w", err)
	}
	return res, nil
}

// Figure is one row of BENCHMARKS.md: where its numbers come from and
// what it is held to. Empty Bench means not measured yet (Note says why).
type Figure struct {
	Name     string
	Bench    string
	Measured string // unit of the figure
	Baseline string // unit of the same-run baseline, "" if none
	Ratio    string // unit of the ratio to the baseline, "" if none
	Scale    float64
	Show     string // unit shown after measured and baseline values
	// The target: OnRatio picks the ratio (else the measured value), Max
	// means at most Limit (else at least). Target "" = informational.
	Target  string
	OnRatio bool
	Max     bool
	Limit   float64
	Note    string
}

// Row is a figure with its values read from a run.
type Row struct {
	Figure
	Measured, Baseline, Ratio string
	OK                        string
}

func (r *Results) get(bench, unit string) (float64, bool) {
	if unit == "" {
		return 0, false
	}
	v, ok := r.Metrics[bench][unit]
	return v, ok
}

// Rows reads every figure from the results.
func (r *Results) Rows(figs []Figure) []Row {
	var out []Row
	for _, f := range figs {
		row := Row{Figure: f, Measured: "—", Baseline: "—", Ratio: "—", OK: "—"}
		if f.Bench == "" {
			row.Measured, row.OK = "not measured yet", "—"
			out = append(out, row)
			continue
		}
		scale := f.Scale
		if scale == 0 {
			scale = 1
		}
		m, okM := r.get(f.Bench, f.Measured)
		if !okM {
			row.Measured, row.OK = "missing from this run", "no"
			out = append(out, row)
			continue
		}
		row.Measured = num(m*scale) + f.Show
		if b, ok := r.get(f.Bench, f.Baseline); ok {
			row.Baseline = num(b*scale) + f.Show
		}
		ratio, okR := r.get(f.Bench, f.Ratio)
		if okR {
			row.Ratio = num(ratio) + "×"
		}
		if f.Target != "" {
			v, have := m, true
			if f.OnRatio {
				v, have = ratio, okR
			}
			switch {
			case !have:
				row.OK = "no"
			case f.Max && v <= f.Limit, !f.Max && v >= f.Limit:
				row.OK = "yes"
			default:
				row.OK = "no"
			}
		}
		out = append(out, row)
	}
	return out
}

// num prints a figure with three significant digits or so.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// Machine describes where the figures were measured.
type Machine struct {
	Date, CPU, Cores, Memory, Go, Nomad, Command string
	// Load is the machine's load average when the report was written:
	// shared with other work, its absolute times follow it.
	Load string
}

// Write renders BENCHMARKS.md.
func Write(w io.Writer, m Machine, rows []Row, failed []string) error {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("Written by `make bench` (scripts/benchreport); do not edit by hand. Each figure\n")
	b.WriteString("stands beside its baseline measured in the same run on the same machine;\n")
	b.WriteString("the targets are DESIGN.md's. One short run on a shared machine: read the\n")
	b.WriteString("ratios more than the absolute times.\n\n")
	fmt.Fprintf(&b, "- Date: %s\n- CPU: %s\n- Cores: %s\n- Memory: %s\n- Go: %s\n- Nomad: %s\n- Command: `%s`\n",
		m.Date, m.CPU, m.Cores, m.Memory, m.Go, m.Nomad, m.Command)
	if m.Load != "" {
		fmt.Fprintf(&b, "- Load average (1, 5, 15 min) as the run ended: %s\n", m.Load)
	}
	b.WriteString("\n")
	b.WriteString("| figure | measured | baseline | ratio | target | ok? |\n|---|---|---|---|---|---|\n")
	var notes []string
	for _, r := range rows {
		target := r.Target
		if target == "" {
			target = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.Name, r.Measured, r.Baseline, r.Ratio, target, r.OK)
		if r.Note != "" {
			notes = append(notes, fmt.Sprintf("- **%s**: %s", r.Name, r.Note))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n## Notes\n\n" + strings.Join(notes, "\n") + "\n")
	}
	if len(failed) > 0 {
		b.WriteString("\n## Failures in this run\n\n")
		for _, f := range failed {
			fmt.Fprintf(&b, "- `%s`\n", f)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
