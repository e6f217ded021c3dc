// Package config holds buildfleet's typed configuration: the structure that
// the config file, BUILDFLEET_* environment variables and flags are decoded
// into, its defaults, and its validation. It does not read files by itself
// beyond secret files; the command line (cmd/buildfleet) resolves sources.
//
// The key names (the mapstructure tags) are a public interface, documented in
// example.yaml.
package config

import (
	"time"
)

// Config is the whole configuration of a manager.
type Config struct {
	// Listen is the address the HTTP server binds: webhook, status page,
	// health and metrics.
	Listen string `mapstructure:"listen" yaml:"listen"`
	// PublicURL is where GitHub and people reach this manager; used in
	// comments and Details links.
	PublicURL string `mapstructure:"public_url" yaml:"public_url"`
	// Log selects the log format and level.
	Log Log `mapstructure:"log" yaml:"log"`
	// Store is the embedded database.
	Store Store `mapstructure:"store" yaml:"store"`
	// GitHub is how the manager reaches GitHub and how GitHub reaches it.
	GitHub GitHub `mapstructure:"github" yaml:"github"`
	// Repositories lists the repositories whose labels trigger builds.
	Repositories []Repository `mapstructure:"repositories" yaml:"repositories"`
	// Pools lists the runner pools: one Nomad parameterized job each.
	Pools []Pool `mapstructure:"pools" yaml:"pools"`
	// ActRunner is where hosts get github-act-runner, for pools that run it.
	ActRunner ActRunner `mapstructure:"act_runner" yaml:"act_runner"`
	// Nomad is the cluster the runners are placed on.
	Nomad Nomad `mapstructure:"nomad" yaml:"nomad"`
	// Notify configures host health and the notices sent to donors.
	Notify Notify `mapstructure:"notify" yaml:"notify"`
	// Runner is the GitHub Actions runner release the runners download.
	Runner Runner `mapstructure:"runner" yaml:"runner"`
	// Reconcile says how often what no webhook told is looked for.
	Reconcile Reconcile `mapstructure:"reconcile" yaml:"reconcile"`
}

// Log configures structured logging.
type Log struct {
	// Format is "text" or "json".
	Format string `mapstructure:"format" yaml:"format"`
	// Level is "debug", "info", "warn" or "error".
	Level string `mapstructure:"level" yaml:"level"`
}

// Store configures the embedded SQLite database.
type Store struct {
	// Path of the database file; created when missing.
	Path string `mapstructure:"path" yaml:"path"`
	// Retention is how long handled webhook deliveries are kept (for
	// inspection and replay) before a periodic prune deletes them; unhandled
	// ones are kept whatever their age. Default 168h.
	Retention Duration `mapstructure:"retention" yaml:"retention"`
}

// DefaultStoreRetention is store.retention's default: a week of deliveries
// to look back at, without growing the database for ever.
const DefaultStoreRetention = 7 * 24 * time.Hour

// GitHub configures the GitHub side: the API, authentication and webhooks.
type GitHub struct {
	// APIURL is the REST API root, e.g. https://api.github.com/ or a GitHub
	// Enterprise Server's https://host/api/v3/.
	APIURL string `mapstructure:"api_url" yaml:"api_url"`
	// WebURL is the web root used for links, e.g. https://github.com/.
	WebURL string `mapstructure:"web_url" yaml:"web_url"`
	// Token authenticates as a user or bot; results are commit statuses.
	Token Secret `mapstructure:"token" yaml:"token"`
	// TokenFile names a file holding Token.
	TokenFile string `mapstructure:"token_file" yaml:"token_file"`
	// App authenticates as a GitHub App installation; results are check runs.
	App App `mapstructure:"app" yaml:"app"`
	// WebhookSecret verifies X-Hub-Signature-256 on every delivery.
	WebhookSecret Secret `mapstructure:"webhook_secret" yaml:"webhook_secret"`
	// WebhookSecretFile names a file holding WebhookSecret.
	WebhookSecretFile string `mapstructure:"webhook_secret_file" yaml:"webhook_secret_file"`
	// WriteLimits are the credential's limits on content-creating
	// requests; empty means GitHub's (80 a minute, 500 an hour). GitHub
	// Enterprise Server's administrators set their own.
	WriteLimits []WriteLimit `mapstructure:"write_limits" yaml:"write_limits"`
}

// App identifies a GitHub App installation.
type App struct {
	ID             int64  `mapstructure:"id" yaml:"id"`
	InstallationID int64  `mapstructure:"installation_id" yaml:"installation_id"`
	PrivateKeyFile string `mapstructure:"private_key_file" yaml:"private_key_file"`
}

// Configured reports whether App authentication was asked for.
func (a App) Configured() bool {
	return a.ID != 0 || a.InstallationID != 0 || a.PrivateKeyFile != ""
}

// Repository is one repository whose PRs may be built on the fleet.
type Repository struct {
	// Name is "owner/repo".
	Name string `mapstructure:"name" yaml:"name"`
	// Workflow is the file name of the workflow to dispatch, e.g. buildbots.yml.
	Workflow string `mapstructure:"workflow" yaml:"workflow"`
	// Ref is the branch whose workflow definition runs; empty means the
	// repository's default branch.
	Ref string `mapstructure:"ref" yaml:"ref"`
	// Report is "checks" (needs App auth) or "status".
	Report string `mapstructure:"report" yaml:"report"`
	// Comment says when to comment on the PR: on_schedule, on_finish, both, off.
	Comment string `mapstructure:"comment" yaml:"comment"`
	// ContextPrefix starts the name of each builder's result on the PR:
	// <prefix><pool>, e.g. buildfleet/linux-quick (default "buildfleet/";
	// "buildbot/" keeps the names a project already knows).
	ContextPrefix string `mapstructure:"context_prefix" yaml:"context_prefix"`
	// Triggers maps labels to tiers.
	Triggers []Trigger `mapstructure:"triggers" yaml:"triggers"`
}

// Trigger is one label that requests a build.
type Trigger struct {
	// Label is the exact label name, any characters GitHub allows.
	Label string `mapstructure:"label" yaml:"label"`
	// Tier is the tier built: the pools of that tier serve it.
	Tier string `mapstructure:"tier" yaml:"tier"`
	// MinRole is the lowest repository role allowed to request it.
	MinRole string `mapstructure:"min_role" yaml:"min_role"`
}

// Pool is a set of donated hosts of one platform and tier, served by one
// Nomad parameterized job.
type Pool struct {
	// Name identifies the pool; it names the result on the PR.
	Name string `mapstructure:"name" yaml:"name"`
	// Platform is "<os>-<arch>", e.g. linux-x86_64, macos-arm64.
	Platform string `mapstructure:"platform" yaml:"platform"`
	// Tier is the tier the pool serves.
	Tier string `mapstructure:"tier" yaml:"tier"`
	// Labels describe the pool (status page, lint). Runners do not carry
	// them: each runner carries only the binding label the manager makes
	// for one builder (see manager/trigger), so no other job can take it.
	Labels []string `mapstructure:"labels" yaml:"labels"`
	// Stable pools build every request of their tier; unstable pools only
	// when asked for by name.
	Stable bool `mapstructure:"stable" yaml:"stable"`
	// NomadJob is the parameterized job dispatched per runner; defaults to
	// "runner-<name>".
	NomadJob string `mapstructure:"nomad_job" yaml:"nomad_job"`
	// MaxRunners caps pending plus running runners of the pool.
	MaxRunners int `mapstructure:"max_runners" yaml:"max_runners"`
	// JobTimeout bounds one build on the pool.
	JobTimeout Duration `mapstructure:"job_timeout" yaml:"job_timeout"`
	// WaitTimeout bounds how long a builder waits for a host (pool full,
	// no eligible host) before it ends as a fleet error with the last
	// placement reason, so that every request ends and gets its summary.
	WaitTimeout Duration `mapstructure:"wait_timeout" yaml:"wait_timeout"`
	// Source is where the pool learns its demand: "webhook" (workflow_job
	// deliveries) or "scaleset" (a runner scale set's message queue).
	Source string `mapstructure:"source" yaml:"source"`
	// ScaleSet configures the runner scale set of a pool with source
	// "scaleset".
	ScaleSet ScaleSet `mapstructure:"scale_set" yaml:"scale_set"`
	// Runner is the runner program: "actions" (GitHub's) or "act-runner"
	// (github-act-runner); the default depends on the platform (see
	// DefaultRunner).
	Runner string `mapstructure:"runner" yaml:"runner"`
	// NodePool is the Nomad node pool of the pool's hosts; defaults to
	// buildfleet-<platform>. Donor configs join hosts to it.
	NodePool string `mapstructure:"node_pool" yaml:"node_pool"`
	// Datacenters the runners may use (Nomad globs); defaults to ["*"].
	Datacenters []string `mapstructure:"datacenters" yaml:"datacenters"`
	// Driver is the runner task's Nomad driver: raw_exec (default), exec or
	// docker. A host serves the pool only when the driver is healthy there.
	Driver string `mapstructure:"driver" yaml:"driver"`
	// MinIsolation is the weakest isolation a host may declare and still
	// get the pool's runners: none (default), user, container or vm.
	MinIsolation string `mapstructure:"min_isolation" yaml:"min_isolation"`
	// Image is the runner image of the docker driver; defaults to
	// DefaultRunnerImage (runner-images/linux).
	Image string `mapstructure:"image" yaml:"image"`
}

// Pool sources.
const (
	SourceWebhook  = "webhook"
	SourceScaleSet = "scaleset"
)

// ScaleSet names a pool's runner scale set on GitHub.
type ScaleSet struct {
	// Name of the scale set, one per repository (default the pool's name).
	Name string `mapstructure:"name" yaml:"name"`
	// RunnerGroup is the runner group the set is created in (default
	// "Default"); a group restricted to some repositories or workflows
	// restricts the set.
	RunnerGroup string `mapstructure:"runner_group" yaml:"runner_group"`
}

// DefaultRunnerImage is the image runner-images/README.md builds.
const DefaultRunnerImage = "buildfleet-runner:latest"

// Nomad configures the Nomad API client. NOMAD_ADDR, NOMAD_TOKEN,
// NOMAD_NAMESPACE, NOMAD_REGION, NOMAD_CACERT, NOMAD_CLIENT_CERT,
// NOMAD_CLIENT_KEY and NOMAD_TLS_SERVER_NAME set the same keys (below the
// BUILDFLEET_NOMAD_* variables, above the file; see cmd/buildfleet).
type Nomad struct {
	Address   string `mapstructure:"address" yaml:"address"`
	Token     Secret `mapstructure:"token" yaml:"token"`
	TokenFile string `mapstructure:"token_file" yaml:"token_file"`
	Namespace string `mapstructure:"namespace" yaml:"namespace"`
	Region    string `mapstructure:"region" yaml:"region"`
	// CAFile is the PEM CA that signed the Nomad servers' HTTPS
	// certificates; empty means the system's roots.
	CAFile string `mapstructure:"ca_file" yaml:"ca_file"`
	// ClientCertFile and ClientKeyFile are the manager's client
	// certificate, for servers with verify_https_client.
	ClientCertFile string `mapstructure:"client_cert_file" yaml:"client_cert_file"`
	ClientKeyFile  string `mapstructure:"client_key_file" yaml:"client_key_file"`
	// TLSServerName is the name checked in the server's certificate when
	// it differs from the address's host (Nomad's server.<region>.nomad).
	TLSServerName string `mapstructure:"tls_server_name" yaml:"tls_server_name"`
}

// Tiers known to buildfleet and the workflows it ships.
const (
	TierQuick   = "quick"
	TierRefleak = "refleak"
)

// Default returns the configuration used for every key the sources leave
// unset.
func Default() Config {
	return Config{
		Listen:    "127.0.0.1:8080",
		PublicURL: "http://127.0.0.1:8080",
		Log:       Log{Format: "text", Level: "info"},
		Store:     Store{Path: "buildfleet.db", Retention: Duration(DefaultStoreRetention)},
		GitHub: GitHub{
			APIURL: "https://api.github.com/",
			WebURL: "https://github.com/",
		},
		Nomad: Nomad{
			Address:   "http://127.0.0.1:4646",
			Namespace: "default",
		},
		Notify: Notify{MissingAfter: Duration(15 * time.Minute), MaxFailures: 3, FailureWindow: Duration(time.Hour)},
		Runner: Runner{Version: RunnerLatest},
		Reconcile: Reconcile{LabelScanEvery: Duration(DefaultLabelScanEvery), LabelMinAge: Duration(DefaultLabelMinAge),
			JobsEvery: Duration(DefaultJobsEvery), RetryEvery: Duration(DefaultRetryEvery)},
	}
}

// DefaultTriggers are CPython's labels, used by a repository that lists none.
func DefaultTriggers() []Trigger {
	return []Trigger{
		{Label: "🔨 test-with-buildbots", Tier: TierQuick, MinRole: "triage"},
		{Label: "🔨 test-with-refleak-buildbots", Tier: TierRefleak, MinRole: "triage"},
	}
}

// ApplyDefaults fills the per-entry defaults of lists, which a flat default
// structure cannot express.
func (c *Config) ApplyDefaults() {
	c.Notify.applyDefaults()
	c.Reconcile.applyDefaults()
	if c.Store.Retention == 0 {
		c.Store.Retention = Duration(DefaultStoreRetention)
	}
	if c.Runner.Version == "" {
		c.Runner.Version = RunnerLatest
	}
	if c.Runner.WarnAfter == 0 {
		c.Runner.WarnAfter = Duration(DefaultRunnerWarnAfter)
	}
	for i := range c.Repositories {
		r := &c.Repositories[i]
		if r.Workflow == "" {
			r.Workflow = "buildbots.yml"
		}
		if r.Report == "" {
			r.Report = ReportStatus
			if c.GitHub.App.Configured() {
				r.Report = ReportChecks
			}
		}
		if r.Comment == "" {
			// One comment per request, as the design's write budget
			// counts; the summary is an opt-in (on_finish, both).
			r.Comment = CommentOnSchedule
		}
		if r.ContextPrefix == "" {
			r.ContextPrefix = DefaultContextPrefix
		}
		if r.Triggers == nil {
			r.Triggers = DefaultTriggers()
		}
	}
	for i := range c.Pools {
		p := &c.Pools[i]
		if p.NomadJob == "" && p.Name != "" {
			p.NomadJob = "runner-" + p.Name
		}
		if p.MaxRunners == 0 {
			p.MaxRunners = 4
		}
		if p.Source == "" {
			p.Source = SourceWebhook
		}
		if plat, err := ParsePlatform(p.Platform); err == nil && p.Runner == "" {
			p.Runner = DefaultRunner(plat)
		}
		if p.Source == SourceScaleSet && p.ScaleSet.Name == "" {
			p.ScaleSet.Name = p.Name
		}
		if p.Source == SourceScaleSet && p.ScaleSet.RunnerGroup == "" {
			p.ScaleSet.RunnerGroup = "Default"
		}
		if pl, err := PlacementOf(*p); err == nil {
			if p.NodePool == "" {
				p.NodePool = pl.NodePool
			}
			if p.Datacenters == nil {
				p.Datacenters = pl.Datacenters
			}
			if p.Driver == "" {
				p.Driver = pl.Driver
			}
			if p.MinIsolation == "" {
				p.MinIsolation = pl.MinIsolation
			}
			if p.Image == "" && p.Driver == DriverDocker {
				p.Image = DefaultRunnerImage
			}
		}
		if p.JobTimeout == 0 {
			p.JobTimeout = Duration(time.Hour)
			if p.Tier == TierRefleak {
				p.JobTimeout = Duration(4 * time.Hour)
			}
		}
		if p.WaitTimeout == 0 {
			p.WaitTimeout = Duration(DefaultWaitTimeout)
		}
	}
}

// DefaultWaitTimeout is longer than a refleak build: a builder queued
// behind one still gets a host before it is given up.
const DefaultWaitTimeout = 6 * time.Hour

// Report and comment modes of a repository.
const (
	ReportChecks = "checks"
	ReportStatus = "status"

	CommentOnSchedule = "on_schedule"
	CommentOnFinish   = "on_finish"
	CommentBoth       = "both"
	CommentOff        = "off"

	// DefaultContextPrefix names results buildfleet/<pool>.
	DefaultContextPrefix = "buildfleet/"
)

// Repository returns the configured repository named "owner/repo"
// (case-insensitive, as GitHub names are), or nil.
func (c *Config) Repository(name string) *Repository {
	for i := range c.Repositories {
		if equalFold(c.Repositories[i].Name, name) {
			return &c.Repositories[i]
		}
	}
	return nil
}

// Trigger returns the trigger of an exact label name, or nil.
func (r *Repository) Trigger(label string) *Trigger {
	for i := range r.Triggers {
		if r.Triggers[i].Label == label {
			return &r.Triggers[i]
		}
	}
	return nil
}

// StablePools returns the stable pools of a tier, in config order.
func (c *Config) StablePools(tier string) []Pool {
	var out []Pool
	for _, p := range c.Pools {
		if p.Stable && p.Tier == tier {
			out = append(out, p)
		}
	}
	return out
}

// Pool returns the pool of a name, or nil.
func (c *Config) Pool(name string) *Pool {
	for i := range c.Pools {
		if c.Pools[i].Name == name {
			return &c.Pools[i]
		}
	}
	return nil
}

// Tiers returns every tier a pool serves, in first-seen order.
func (c *Config) Tiers() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range c.Pools {
		if !seen[p.Tier] {
			seen[p.Tier] = true
			out = append(out, p.Tier)
		}
	}
	return out
}
