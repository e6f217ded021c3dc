package ghsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RunnerOptions configure the stand-in runner.
type RunnerOptions struct {
	JITConfig string    // the encoded_jit_config
	WorkDir   string    // where the work folder goes (default: a temp dir)
	Out       io.Writer // progress and job output (default os.Stderr)
	// MaxWait bounds how long the runner waits for a job (0: forever).
	MaxWait time.Duration
	// Version is the runner version reported at session start (the
	// runner packages of runners/downloads pass theirs); empty is not
	// checked against the minimum.
	Version string
}

// ErrRunnerDeprecated is returned when the server refused the runner's
// version as outdated.
var ErrRunnerDeprecated = errors.New("runner version refused as deprecated")

// ErrJITUsed is returned when the JIT config was already redeemed.
var ErrJITUsed = errors.New("jit config already used")

type runnerClient struct {
	base    string
	id      int64
	token   string // the Actions service token of the OAuth exchange
	session string
	http    *http.Client
}

func (c *runnerClient) call(ctx context.Context, op string, in runnerReq, out any) (int, error) {
	in.RunnerID, in.Session = c.id, c.session
	b, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/_ghsim/runner/"+op, bytes.NewReader(b))
	if err != nil {
		return 0, fmt.Errorf("runner %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("runner %s: %w", op, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("runner %s: %d %s", op, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			return resp.StatusCode, fmt.Errorf("runner %s: decoding: %w", op, err)
		}
	}
	return resp.StatusCode, nil
}

// RunRunner is the stand-in runner: it redeems the JIT config (once; a
// second redemption fails with ErrJITUsed), waits for one job matching its
// labels, runs it, reports the conclusion and returns. The job's own
// failure is not an error of the runner.
func RunRunner(ctx context.Context, o RunnerOptions) error {
	cfg, err := DecodeJITConfig(o.JITConfig)
	if err != nil {
		return err
	}
	out := o.Out
	if out == nil {
		out = os.Stderr
	}
	c := &runnerClient{base: serverOf(cfg), id: cfg.AgentID, http: &http.Client{}}
	if c.token, err = RunnerToken(ctx, c.http, cfg); err != nil {
		return fmt.Errorf("runner %s: %w", cfg.AgentName, err)
	}
	var red struct {
		Session string
		Labels  []string
	}
	if o.Version != "" {
		fmt.Fprintf(out, "Current runner version: '%s'\n", o.Version)
	}
	code, err := c.call(ctx, "redeem", runnerReq{Version: o.Version}, &red)
	if code == http.StatusConflict {
		return fmt.Errorf("runner %s: %w", cfg.AgentName, ErrJITUsed)
	}
	if code == http.StatusForbidden {
		// The words GitHub's runner prints before it exits.
		fmt.Fprintf(out, "An error occurred: Error: Forbidden %s\n", deprecatedMessage(o.Version))
		return fmt.Errorf("runner %s: %w: %s", cfg.AgentName, ErrRunnerDeprecated, deprecatedMessage(o.Version))
	}
	if err != nil {
		return err
	}
	c.session = red.Session
	fmt.Fprintf(out, "runner %s online, labels %v\n", cfg.AgentName, red.Labels)
	var deadline time.Time
	if o.MaxWait > 0 {
		deadline = time.Now().Add(o.MaxWait)
	}
	var spec JobSpec
	for {
		wait := 20 * time.Second
		if !deadline.IsZero() {
			wait = min(wait, time.Until(deadline))
		}
		code, err := c.call(ctx, "acquire", runnerReq{WaitMS: int(wait.Milliseconds())}, &spec)
		if err != nil {
			return err
		}
		if code == http.StatusOK {
			break
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return fmt.Errorf("runner %s: no job within %s", cfg.AgentName, o.MaxWait)
		}
	}
	fmt.Fprintf(out, "runner %s took job %d %q\n", cfg.AgentName, spec.JobID, spec.Name)
	work := o.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "ghsim-runner-"); err != nil {
			return fmt.Errorf("making work dir: %w", err)
		}
		defer os.RemoveAll(work)
	}
	conclusion := c.runJob(ctx, &spec, cfg, filepath.Join(work, cfg.WorkFolder), out)
	if _, err := c.call(context.WithoutCancel(ctx), "complete", runnerReq{JobID: spec.JobID, Conclusion: conclusion}, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "runner %s finished job %d: %s\n", cfg.AgentName, spec.JobID, conclusion)
	return nil
}

// runJob runs the steps (or the simulation) and returns the conclusion.
// A heartbeat watches for cancellation and the job's timeout.
func (c *runnerClient) runJob(ctx context.Context, spec *JobSpec, cfg JITConfig, work string, out io.Writer) string {
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if spec.TimeoutMinutes > 0 {
		var c2 context.CancelFunc
		jctx, c2 = context.WithTimeout(jctx, time.Duration(spec.TimeoutMinutes)*time.Minute)
		defer c2()
	}
	cancelled := make(chan struct{})
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-jctx.Done():
				return
			case <-t.C:
				var hb struct{ Cancel bool }
				if _, err := c.call(jctx, "heartbeat", runnerReq{JobID: spec.JobID}, &hb); err == nil && hb.Cancel {
					close(cancelled)
					cancel()
					return
				}
			}
		}
	}()
	logf := func(format string, a ...any) {
		text := fmt.Sprintf(format, a...)
		fmt.Fprint(out, text)
		_, _ = c.call(context.WithoutCancel(ctx), "log", runnerReq{JobID: spec.JobID, Text: text}, nil)
	}
	result := func(ok bool) string {
		select {
		case <-cancelled:
			return "cancelled"
		default:
		}
		if jctx.Err() != nil && ctx.Err() == nil {
			return "cancelled" // timeout-minutes exceeded
		}
		if ok {
			return "success"
		}
		return "failure"
	}
	if sim := spec.Simulate; sim != nil {
		d, _ := time.ParseDuration(sim.Duration)
		logf("simulating job for %s, conclusion %s\n", d, sim.Conclusion)
		select {
		case <-time.After(d):
		case <-jctx.Done():
			return result(false)
		}
		return sim.Conclusion
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		logf("making work folder: %v\n", err)
		return "failure"
	}
	ok := true
	for _, st := range spec.Steps {
		if !ok || jctx.Err() != nil {
			_, _ = c.call(context.WithoutCancel(ctx), "step", runnerReq{JobID: spec.JobID, Number: st.Number, Status: "completed", Conclusion: "skipped"}, nil)
			continue
		}
		_, _ = c.call(jctx, "step", runnerReq{JobID: spec.JobID, Number: st.Number, Status: "in_progress"}, nil)
		logf("##[group]%s\n", st.Name)
		stepOK := true
		if st.Uses != "" {
			logf("ghsim: skipping uses: %s\n", st.Uses)
		} else if st.Run != "" {
			stepOK = c.runStep(jctx, spec, cfg, st, work, logf)
		}
		logf("##[endgroup]\n")
		concl := "success"
		if !stepOK {
			concl, ok = "failure", false
		}
		_, _ = c.call(context.WithoutCancel(ctx), "step", runnerReq{JobID: spec.JobID, Number: st.Number, Status: "completed", Conclusion: concl}, nil)
	}
	return result(ok)
}

// runStep runs a run: step with bash like GitHub's default shell, with the
// job env, the step env and the GITHUB_* variables.
func (c *runnerClient) runStep(ctx context.Context, spec *JobSpec, cfg JITConfig, st *jobStep, work string, logf func(string, ...any)) bool {
	script, err := os.CreateTemp("", "ghsim-step-*.sh")
	if err != nil {
		logf("writing step script: %v\n", err)
		return false
	}
	defer os.Remove(script.Name())
	_, _ = script.WriteString(st.Run)
	script.Close()
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-eo", "pipefail", script.Name())
	cmd.Dir = work
	cmd.Env = append(os.Environ(),
		"CI=true", "GITHUB_ACTIONS=true", "GITHUB_RUN_ID="+strconv.FormatInt(spec.RunID, 10),
		"GITHUB_JOB_ID="+strconv.FormatInt(spec.JobID, 10), "GITHUB_REPOSITORY="+spec.Repo,
		"GITHUB_SHA="+spec.HeadSHA, "GITHUB_WORKSPACE="+work, "GITHUB_SERVER_URL="+c.base,
		"RUNNER_NAME="+cfg.AgentName,
	)
	for k, v := range spec.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	for k, v := range st.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	logf("%s", buf.String())
	if err != nil {
		logf("##[error]Process completed with %v\n", err)
		return false
	}
	return true
}
