package nomad

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/buildfleet/buildfleet/config"
	nomadspec "github.com/buildfleet/buildfleet/nomad"
	runnerimages "github.com/buildfleet/buildfleet/runner-images"
)

// Dispatch meta keys of a runner pool job. Constraints cannot read them;
// they only name the runner (and so its variable) and link it to GitHub.
const (
	MetaRunnerName  = "runner_name"
	MetaGitHubJobID = "github_job_id"
	MetaAttempt     = "attempt"
	// MetaPool is set on the parent (and so inherited by every child); Watch
	// recognises buildfleet's jobs by it.
	MetaPool = "buildfleet_pool"
	// MetaTier is set on the parent next to MetaPool, for operators.
	MetaTier = "buildfleet_tier"
	// MetaRunnerURL, MetaRunnerSHA256 and MetaRunnerVersion name the
	// runner archive the bootstrap downloads and the checksum it must have
	// (from GitHub's list of runner downloads; not secrets). The task sees
	// them as NOMAD_META_runner_url etc.
	MetaRunnerURL     = "runner_url"
	MetaRunnerSHA256  = "runner_sha256"
	MetaRunnerVersion = "runner_version"
	// MetaRunnerKind is set on the parent too: the runner program of the
	// pool, "actions" or "act-runner" (config.Pool.Runner). The archive
	// itself comes per child, in dispatch meta.
	MetaRunnerKind = "buildfleet_runner"
)

// DefaultTierMetaKey is the node meta key listing the tiers a host serves,
// e.g. buildfleet_tiers = "quick,refleak" (see `buildfleet donor config`).
const DefaultTierMetaKey = config.MetaTiers

// Resources is what one runner of a tier reserves on its host.
type Resources struct {
	CPU         int // MHz
	MemoryMB    int
	MemoryMaxMB int // 0: no oversubscription
}

// DefaultTierResources sizes runners per tier. Refleak builds run for hours
// and keep more in memory.
func DefaultTierResources() map[string]Resources {
	return map[string]Resources{
		config.TierQuick:   {CPU: 2000, MemoryMB: 4096},
		config.TierRefleak: {CPU: 4000, MemoryMB: 8192},
	}
}

// RenderOptions shapes the pool jobs beyond what the pool config says:
// how the runner starts and what it reserves. Where the runner may run
// (node pool, datacenters, constraints, driver) comes from the pool config
// alone, through config.PlacementOf, which donor configs share. The zero
// value renders production jobs in the "default" namespace.
type RenderOptions struct {
	// Namespace of the jobs and their variables; "" means "default".
	Namespace string
	// Command and Args start the runner instead of the platform's bootstrap
	// (run-runner.sh); on Unix, isolate.sh still starts it, as the runner's
	// own user, with its JIT config at $JIT_CONFIG_FILE.
	Command string
	Args    []string
	// User runs the task as this host user instead of the agent's. Leave it
	// empty on Linux: a root agent lets isolate.sh give every runner a uid
	// of its own, which a task user would prevent.
	User string
	// Resources per tier; a tier missing here uses DefaultTierResources,
	// then the quick tier's.
	Resources map[string]Resources
	// KillTimeout lets a runner finish cleanly when stopped; 0 means 25s,
	// inside the client's default max_kill_timeout of 30s.
	KillTimeout time.Duration
	// LostAfter is how long a silent host's runner is kept as "unknown"
	// before it is lost (never replaced); 0 means 1h.
	LostAfter time.Duration
}

// DeliveredFile is a file the pool job writes into the task dir with a
// template before the task starts: the bootstrap scripts, so a donor
// installs nothing but Nomad.
type DeliveredFile struct {
	Dest  string // relative to the task dir, e.g. local/isolate.sh
	Perms string
	Data  string
}

// taskCommand is what the runner task runs and the files it needs.
//
// On Unix, isolate.sh (runner-images/unix) always comes first: as root it
// runs the runner as a uid of its own with no groups, a fresh private work
// dir and a clean environment; under an unprivileged agent it refuses uid 0
// and group 0. The runner it starts is run-runner.sh (fetch, verify, run
// the actions runner), or o.Command with o.Args (the demo's and the tests'
// stand-in), which finds its JIT config at $JIT_CONFIG_FILE.
//
// On Windows, run-runner.ps1 reads the JIT config from the secrets dir;
// o.Command replaces it.
func taskCommand(p config.Platform, o RenderOptions) (string, []string, []DeliveredFile) {
	if p.Kernel == "windows" {
		if o.Command != "" {
			return o.Command, o.Args, nil
		}
		return `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`,
			[]string{"-NoProfile", "-ExecutionPolicy", "Bypass", "-File", "${NOMAD_TASK_DIR}/run-runner.ps1", "-JitConfigFile", "${NOMAD_SECRETS_DIR}/jit"},
			[]DeliveredFile{{Dest: "local/run-runner.ps1", Perms: "0644", Data: runnerimages.RunRunnerPS1}}
	}
	files := []DeliveredFile{{Dest: "local/isolate.sh", Perms: "0555", Data: runnerimages.Isolate}}
	args := []string{"${NOMAD_TASK_DIR}/isolate.sh"}
	if o.Command != "" {
		args = append(append(args, "--", o.Command), o.Args...)
	} else {
		files = append(files, DeliveredFile{Dest: "local/run-runner.sh", Perms: "0555", Data: runnerimages.RunRunner})
		args = append(args, "--bootstrap", "${NOMAD_TASK_DIR}/run-runner.sh")
	}
	return "/bin/sh", args, files
}

// GhsimRunnerCommand is the stand-in runner of the demo and the tests; it
// reads its JIT config from $JIT_CONFIG_FILE, set by isolate.sh.
func GhsimRunnerCommand(ghsimBin string) (string, []string) {
	return ghsimBin, []string{"runner"}
}

// RunnerVarPrefix is the Nomad Variable folder of a pool job's runners; the
// JIT config of runner R is the item "jit" of RunnerVarPrefix(job)+"/"+R.
func RunnerVarPrefix(parentJobID string) string {
	return "buildfleet/runners/" + parentJobID
}

// poolSpec is everything both renderers (Go and HCL) use, resolved once.
type poolSpec struct {
	Pool, Platform, Tier   string
	Runner                 string
	JobID, Namespace       string
	Datacenters            []string
	NodePool               string
	Constraints            []config.Constraint
	Driver, Image          string
	MetaRequired           []string
	MetaOptional           []string
	Command                string
	Args                   []string
	Files                  []DeliveredFile
	User                   string
	KillTimeout, LostAfter string
	killTimeout, lostAfter time.Duration
	TemplateData           string
	VarPrefix              string
	Resources
}

func resolve(pool config.Pool, o RenderOptions) (poolSpec, error) {
	pl, err := config.PlacementOf(pool)
	if err != nil {
		return poolSpec{}, err
	}
	plat := pl.Platform
	s := poolSpec{
		Pool: pool.Name, Platform: pool.Platform, Tier: pool.Tier, Runner: pool.Runner,
		JobID: pool.NomadJob, Namespace: o.Namespace, Datacenters: pl.Datacenters,
		NodePool: pl.NodePool, Constraints: pl.Constraints, Driver: pl.Driver, Image: pool.Image,
		MetaRequired: []string{MetaRunnerName, MetaGitHubJobID},
		MetaOptional: []string{MetaAttempt, MetaRunnerURL, MetaRunnerSHA256, MetaRunnerVersion},
		Command:      o.Command, Args: o.Args, User: o.User,
		killTimeout: o.KillTimeout, lostAfter: o.LostAfter,
	}
	if s.JobID == "" {
		s.JobID = "runner-" + pool.Name
	}
	if s.Runner == "" {
		s.Runner = config.DefaultRunner(plat)
	}
	if s.Namespace == "" {
		s.Namespace = "default"
	}
	if s.Driver == config.DriverDocker && s.Image == "" {
		s.Image = config.DefaultRunnerImage
	}
	s.Command, s.Args, s.Files = taskCommand(plat, o)
	if s.Args == nil {
		s.Args = []string{}
	}
	if s.killTimeout == 0 {
		s.killTimeout = 25 * time.Second
	}
	if s.lostAfter == 0 {
		s.lostAfter = time.Hour
	}
	s.KillTimeout, s.LostAfter = s.killTimeout.String(), s.lostAfter.String()
	var ok bool
	if s.Resources, ok = o.Resources[pool.Tier]; !ok {
		if s.Resources, ok = DefaultTierResources()[pool.Tier]; !ok {
			s.Resources = DefaultTierResources()[config.TierQuick]
		}
	}
	s.VarPrefix = RunnerVarPrefix(s.JobID)
	// The task's workload identity is the parent job's (dispatched children
	// share it); the job policy attached by RegisterPool grants read on
	// VarPrefix/* only. An absent variable renders an empty file.
	s.TemplateData = fmt.Sprintf(`{{ with nomadVar (printf "%s/%%s" (env "NOMAD_META_%s")) }}{{ .jit }}{{ end }}`,
		s.VarPrefix, MetaRunnerName)
	return s, nil
}

// RenderPoolJob builds the parameterized batch job of a pool: what
// RegisterPool registers. It is the same job as RenderPoolHCL's text.
func RenderPoolJob(pool config.Pool, o RenderOptions) (*api.Job, error) {
	s, err := resolve(pool, o)
	if err != nil {
		return nil, err
	}
	job := api.NewBatchJob(s.JobID, s.JobID, "", api.JobDefaultPriority)
	job.Namespace = ptr(s.Namespace)
	job.Datacenters = s.Datacenters
	job.NodePool = ptr(s.NodePool)
	job.Meta = map[string]string{MetaPool: s.Pool, MetaTier: s.Tier, MetaRunnerKind: s.Runner}
	job.ParameterizedJob = &api.ParameterizedJobConfig{
		Payload:      "forbidden",
		MetaRequired: s.MetaRequired,
		MetaOptional: s.MetaOptional,
	}
	for _, c := range s.Constraints {
		job.Constraints = append(job.Constraints, api.NewConstraint(c.Attribute, c.Operator, c.Value))
	}
	tg := api.NewTaskGroup("runner", 1)
	tg.RestartPolicy = &api.RestartPolicy{Attempts: ptr(0), Mode: ptr("fail")}
	tg.ReschedulePolicy = &api.ReschedulePolicy{Attempts: ptr(0), Unlimited: ptr(false)}
	tg.Disconnect = &api.DisconnectStrategy{
		LostAfter: ptr(s.lostAfter),
		Replace:   ptr(false),
		Reconcile: ptr(api.ReconcileOptionKeepOriginal),
	}
	task := api.NewTask("runner", s.Driver)
	task.KillTimeout = ptr(s.killTimeout)
	task.User = s.User
	task.Config = taskConfig(s)
	task.Templates = []*api.Template{{
		DestPath:     ptr("secrets/jit"),
		Perms:        ptr("0600"),
		ChangeMode:   ptr("noop"),
		EmbeddedTmpl: ptr(s.TemplateData),
	}}
	for _, f := range s.Files {
		task.Templates = append(task.Templates, &api.Template{
			DestPath:     ptr(f.Dest),
			Perms:        ptr(f.Perms),
			ChangeMode:   ptr("noop"),
			EmbeddedTmpl: ptr(f.Data),
		})
	}
	task.Resources = &api.Resources{CPU: ptr(s.CPU), MemoryMB: ptr(s.MemoryMB)}
	if s.MemoryMaxMB > 0 {
		task.Resources.MemoryMaxMB = ptr(s.MemoryMaxMB)
	}
	tg.AddTask(task)
	job.AddTaskGroup(tg)
	return job, nil
}

// taskConfig is the driver's config block: raw_exec and exec start the
// runner command; docker starts the runner image, whose entrypoint reads
// the JIT config from the task's secrets dir (mounted at /secrets).
func taskConfig(s poolSpec) map[string]any {
	if s.Driver == config.DriverDocker {
		return map[string]any{"image": s.Image}
	}
	return map[string]any{"command": s.Command, "args": s.Args}
}

var poolTemplate = template.Must(template.New("runner-pool").
	Delims("[[", "]]").
	Funcs(template.FuncMap{"q": hclString, "list": hclList, "literal": hclLiteral}).
	Parse(nomadspec.RunnerPoolTemplate))

// RenderPoolHCL renders nomad/runner-pool.nomad.hcl.tmpl for a pool: the
// text `nomad job run` takes, equal to RenderPoolJob's job.
func RenderPoolHCL(pool config.Pool, o RenderOptions) (string, error) {
	s, err := resolve(pool, o)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := poolTemplate.Execute(&b, s); err != nil {
		return "", fmt.Errorf("rendering pool %s: %w", pool.Name, err)
	}
	return b.String(), nil
}

// hclString quotes s for HCL2. ${...} is kept: it is Nomad's runtime
// interpolation (${NOMAD_SECRETS_DIR}, ${attr.…}), which jobspec2 leaves as
// is; %{ would start an HCL template directive, so it is escaped.
func hclString(s string) string {
	q := strconv.Quote(s)
	return strings.ReplaceAll(q, "%{", "%%{")
}

// hclLiteral quotes s for HCL2 so that its value is exactly s: a script
// delivered by a template, whose shell ${...} Nomad must not interpolate.
func hclLiteral(s string) string {
	q := strconv.Quote(s)
	q = strings.ReplaceAll(q, "${", "$${")
	return strings.ReplaceAll(q, "%{", "%%{")
}

func hclList(xs []string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = hclString(x)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func ptr[T any](v T) *T { return &v }
