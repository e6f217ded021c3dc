// Command benchreport turns the output of `go test -bench` into
// BENCHMARKS.md: each figure beside its same-run baseline and its target,
// with the date and the machine it was measured on. `make bench` runs it,
// so the file is always the product of the command, never of a hand.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func main() {
	in := flag.String("in", "", "file holding the output of go test -bench")
	out := flag.String("out", "BENCHMARKS.md", "file to write")
	nomad := flag.String("nomad", "", "Nomad binary, asked for its version")
	command := flag.String("command", "make bench", "the command that produced the figures")
	flag.Parse()
	if err := run(*in, *out, *nomad, *command); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(in, out, nomad, command string) error {
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("opening benchmark output: %w", err)
	}
	defer f.Close()
	res, err := Parse(f)
	if err != nil {
		return err
	}
	m := Machine{Date: time.Now().UTC().Format("2006-01-02 15:04 MST"), CPU: cpuModel(res.CPU),
		Cores: strconv.Itoa(runtime.NumCPU()), Memory: memTotal(), Go: runtime.Version(), Nomad: nomadVersion(nomad), Command: command,
		Load: loadAverage()}
	w, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("creating %s: %w", out, err)
	}
	if err := Write(w, m, res.Rows(figures), res.Failed); err != nil {
		w.Close()
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return w.Close()
}

// cpuModel prefers what go test printed, else /proc/cpuinfo.
func cpuModel(fromBench string) string {
	if fromBench != "" {
		return fromBench
	}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		return v
	}
	return runtime.GOARCH
}

func memTotal() string {
	v := procField("/proc/meminfo", "MemTotal")
	kb, err := strconv.ParseFloat(strings.TrimSuffix(v, " kB"), 64)
	if err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.1f GiB", kb/(1<<20))
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func nomadVersion(bin string) string {
	if bin == "" {
		return "unknown"
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// loadAverage is /proc/loadavg's first three fields ("" elsewhere).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], ", ")
}
