// Command ghsim runs the GitHub simulator (serve), its stand-in runner
// (runner), and a webhook listener for trying it by hand (listen).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/buildfleet/buildfleet/internal/ghsim"
)

const usage = `usage:
  ghsim serve  --listen ADDR [--workflows DIR] [--repo OWNER/NAME] [--token TOKEN[=LOGIN]] ...
  ghsim runner (--jitconfig CONFIG | --jitconfig-file FILE | $JIT_CONFIG_FILE) [--work-dir DIR] [--runner-version V]
  ghsim listen --listen ADDR [--secret SECRET]
Run "ghsim COMMAND -h" for a command's flags.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ghsim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("no command given\n%s", usage)
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "runner":
		return runner(ctx, args[1:], stderr)
	case "listen":
		return listen(ctx, args[1:], stdout)
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func runner(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("runner", flag.ContinueOnError)
	jit := fs.String("jitconfig", "", "encoded JIT config (as from generate-jitconfig)")
	jitFile := fs.String("jitconfig-file", os.Getenv("JIT_CONFIG_FILE"), "file holding the encoded JIT config (default $JIT_CONFIG_FILE, which buildfleet's isolate.sh sets)")
	work := fs.String("work-dir", "", "folder for the work folder (default: a temp dir)")
	maxWait := fs.Duration("max-wait", 0, "give up when no job comes within this time (0: wait forever)")
	version := fs.String("runner-version", "", "runner version reported at session start (the runner packages set it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := *jit
	if env := os.Getenv("ACTIONS_RUNNER_INPUT_JITCONFIG"); cfg == "" && env != "" {
		// How GitHub's runner takes it too (run-runner.sh passes it so).
		cfg = env
		os.Unsetenv("ACTIONS_RUNNER_INPUT_JITCONFIG")
	}
	if *jitFile != "" && cfg == "" {
		b, err := os.ReadFile(*jitFile)
		if err != nil {
			return fmt.Errorf("reading jit config: %w", err)
		}
		cfg = string(b)
	}
	if cfg == "" {
		return errors.New("runner: --jitconfig or --jitconfig-file is required")
	}
	return ghsim.RunRunner(ctx, ghsim.RunnerOptions{JITConfig: cfg, WorkDir: *work, Out: stderr, MaxWait: *maxWait, Version: *version})
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("listen", "127.0.0.1:8787", "address to listen on")
	base := fs.String("base-url", "", "URL clients reach ghsim at (default http://LISTEN)")
	workflows := fs.String("workflows", "", "folder of workflow files for the --repo repositories")
	org := fs.Bool("org", true, "--repo owners are organizations")
	legacy := fs.Bool("legacy-dispatch", false, "emulate GHES <= 3.20: 400 on return_run_details")
	jobDur := fs.Duration("job-duration", 0, "runners simulate every job for this long instead of running steps")
	jobConcl := fs.String("job-conclusion", "", "conclusion of simulated jobs (default success)")
	lostAfter := fs.Duration("runner-lost-after", 0, "a runner silent this long shows offline and its job fails (default 10m)")
	inst := fs.Int64("installation-id", 0, "add an installation object to webhook payloads")
	rate := fs.Int("rate-limit", 5000, "primary rate limit per token and hour")
	hookSecret := fs.String("hook-secret", "", "secret of the --hook webhooks")
	hookEvents := fs.String("hook-events", "*", "comma-separated events of the --hook webhooks")
	verbose := fs.Bool("v", false, "log at debug level")
	minRunner := fs.String("min-runner-version", "", "refuse runners older than this at session start, as GitHub refuses deprecated ones")
	var repos, tokens, collabs, hooks, faults, users multi
	fs.Var(&repos, "repo", "create repository OWNER/NAME (repeatable)")
	fs.Var(&tokens, "token", "accept TOKEN[=LOGIN] (repeatable; none: any token acts as buildfleet-bot)")
	fs.Var(&collabs, "collaborator", "LOGIN=ROLE on every --repo (repeatable)")
	fs.Var(&users, "user", "make LOGIN a known user without a role (repeatable)")
	fs.Var(&hooks, "hook", "register webhook URL on every --repo (repeatable)")
	fs.Var(&faults, "fault", "fault rule KIND[:key=value,...] (repeatable; see README)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	opts := ghsim.Options{
		BaseURL: *base, LegacyDispatch: *legacy, JobDuration: *jobDur, JobConclusion: *jobConcl, RunnerLostAfter: *lostAfter,
		InstallationID: *inst, RateLimit: *rate, MinRunnerVersion: *minRunner,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	for _, t := range tokens {
		if opts.Tokens == nil {
			opts.Tokens = map[string]string{}
		}
		tok, login, ok := strings.Cut(t, "=")
		if !ok {
			login = "buildfleet-bot"
		}
		opts.Tokens[tok] = login
	}
	// The runner packages of runners/downloads start this binary's runner.
	if exe, err := os.Executable(); err == nil {
		opts.RunnerCommand = exe
	}
	s := ghsim.New(opts)
	for _, spec := range faults {
		f, err := ghsim.ParseFault(spec)
		if err != nil {
			return err
		}
		if err := s.AddFault(f); err != nil {
			return err
		}
	}
	for _, u := range users {
		s.AddUser(u)
	}
	url, err := s.Start(*addr)
	if err != nil {
		return err
	}
	defer s.Close()
	for _, full := range repos {
		if err := setupRepo(s, full, *org, *workflows, collabs, hooks, *hookSecret, *hookEvents); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "ghsim serving at %s\n", url)
	<-ctx.Done()
	return nil
}

func setupRepo(s *ghsim.Server, full string, org bool, workflows string, collabs, hooks multi, secret, events string) error {
	owner, name, ok := strings.Cut(full, "/")
	if !ok {
		return fmt.Errorf("--repo %q: want OWNER/NAME", full)
	}
	if err := s.CreateRepo(ghsim.RepoSpec{Owner: owner, Name: name, Org: org, WorkflowsDir: workflows}); err != nil {
		return err
	}
	for _, c := range collabs {
		login, role, _ := strings.Cut(c, "=")
		if err := s.AddCollaborator(full, login, role); err != nil {
			return fmt.Errorf("--collaborator %q: %w", c, err)
		}
	}
	for _, h := range hooks {
		if _, err := s.AddHook(full, h, secret, strings.Split(events, ",")); err != nil {
			return fmt.Errorf("--hook %q: %w", h, err)
		}
	}
	return nil
}

// listen prints every webhook it receives, checking X-Hub-Signature-256
// when --secret is set.
func listen(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("listen", flag.ContinueOnError)
	addr := fs.String("listen", "127.0.0.1:8788", "address to listen on")
	secret := fs.String("secret", "", "webhook secret to verify signatures with")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv := &http.Server{Addr: *addr, ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sig := r.Header.Get("X-Hub-Signature-256")
		verdict := "unchecked"
		if *secret != "" {
			verdict = "BAD"
			if sig == ghsim.Sign(*secret, body) {
				verdict = "ok"
			}
		}
		fmt.Fprintf(stdout, "%s %s delivery=%s hook=%s signature=%s (%s)\n%s\n",
			r.Header.Get("X-GitHub-Event"), actionOf(body), r.Header.Get("X-GitHub-Delivery"),
			r.Header.Get("X-GitHub-Hook-ID"), sig, verdict, truncate(body, 400))
		w.WriteHeader(http.StatusAccepted)
	})}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	fmt.Fprintf(stdout, "listening for webhooks on %s\n", *addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("listening: %w", err)
	}
	return nil
}

func actionOf(body []byte) string {
	const key = `"action":"`
	i := strings.Index(string(body), key)
	if i < 0 {
		return ""
	}
	rest := string(body[i+len(key):])
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return ""
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}
