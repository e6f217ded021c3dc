package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// FieldError is one problem with one key.
type FieldError struct {
	Key string // e.g. "pools[2].labels"
	Msg string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

var (
	repoName = regexp.MustCompile(`^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$`)
	// poolName is used in Nomad job IDs, variable paths and status contexts.
	poolName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	tierName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	// nomadJobID excludes "/": children of a parameterized job are
	// "<parent>/dispatch-…".
	nomadJobID   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	workflowFile = regexp.MustCompile(`^[A-Za-z0-9._-]+\.ya?ml$`)
)

// Validate checks the whole configuration and returns every problem found,
// each naming its key. It does not touch the network or the file system.
func (c *Config) Validate() error { return c.validate(true) }

// ValidateFleet checks what the fleet's tools read (pools, repositories,
// Nomad) without asking for the manager's GitHub credentials: `lint`,
// `donor config`, `status` and `nomad render|apply` run where the token and
// the webhook secret are not, and must not need them.
func (c *Config) ValidateFleet() error { return c.validate(false) }

func (c *Config) validate(secrets bool) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}

	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "must be host:port, got %q", c.Listen)
	}
	c.Notify.validate(bad)
	c.Reconcile.validate(bad)
	validateWriteLimits(bad, c.GitHub.WriteLimits)
	checkURL(bad, "public_url", c.PublicURL)
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if strings.TrimSpace(c.Store.Path) == "" {
		bad("store.path", "must not be empty")
	}
	if c.Store.Retention != 0 && c.Store.Retention < Duration(time.Hour) {
		bad("store.retention", "must be at least 1h (handled deliveries are kept that long), got %s", time.Duration(c.Store.Retention))
	}

	checkURL(bad, "github.api_url", c.GitHub.APIURL)
	checkURL(bad, "github.web_url", c.GitHub.WebURL)
	if secrets && c.GitHub.WebhookSecret == "" && c.GitHub.WebhookSecretFile == "" {
		bad("github.webhook_secret", "must not be empty: every webhook is verified with it (set it, github.webhook_secret_file or BUILDFLEET_GITHUB_WEBHOOK_SECRET)")
	}
	app := c.GitHub.App
	switch {
	case app.Configured() && (c.GitHub.Token != "" || c.GitHub.TokenFile != ""):
		bad("github.app", "set either github.token or github.app, not both")
	case app.Configured():
		if app.ID <= 0 {
			bad("github.app.id", "must be a positive number")
		}
		if app.InstallationID <= 0 {
			bad("github.app.installation_id", "must be a positive number")
		}
		if app.PrivateKeyFile == "" {
			bad("github.app.private_key_file", "must not be empty")
		}
	case secrets && c.GitHub.Token == "" && c.GitHub.TokenFile == "":
		bad("github.token", "must not be empty unless github.app is set (set it, github.token_file or BUILDFLEET_GITHUB_TOKEN)")
	}

	if len(c.Repositories) == 0 {
		bad("repositories", "must list at least one repository")
	}
	tiers := map[string]bool{}
	for _, p := range c.Pools {
		tiers[p.Tier] = true
	}
	seenRepo := map[string]bool{}
	for i, r := range c.Repositories {
		k := fmt.Sprintf("repositories[%d]", i)
		if !repoName.MatchString(r.Name) {
			bad(k+".name", "must be owner/repo, got %q", r.Name)
		} else if seenRepo[strings.ToLower(r.Name)] {
			bad(k+".name", "%q is listed twice", r.Name)
		}
		seenRepo[strings.ToLower(r.Name)] = true
		if !workflowFile.MatchString(r.Workflow) {
			bad(k+".workflow", "must be a workflow file name like buildbots.yml, got %q", r.Workflow)
		}
		switch r.Report {
		case ReportStatus:
		case ReportChecks:
			if !app.Configured() {
				bad(k+".report", "checks needs github.app: GitHub lets only Apps create check runs; use status with a token")
			}
		default:
			bad(k+".report", "must be checks or status, got %q", r.Report)
		}
		switch r.Comment {
		case CommentOnSchedule, CommentOnFinish, CommentBoth, CommentOff:
		default:
			bad(k+".comment", "must be on_schedule, on_finish, both or off, got %q", r.Comment)
		}
		if msg := checkContextPrefix(r.ContextPrefix); msg != "" {
			bad(k+".context_prefix", "%s, got %q", msg, r.ContextPrefix)
		}
		if len(r.Triggers) == 0 {
			bad(k+".triggers", "must not be empty")
		}
		seenLabel := map[string]bool{}
		for j, t := range r.Triggers {
			tk := fmt.Sprintf("%s.triggers[%d]", k, j)
			switch {
			case t.Label == "":
				bad(tk+".label", "must not be empty")
			case len([]rune(t.Label)) > 50:
				bad(tk+".label", "GitHub label names are at most 50 characters, got %d", len([]rune(t.Label)))
			case seenLabel[t.Label]:
				bad(tk+".label", "%q is listed twice", t.Label)
			}
			seenLabel[t.Label] = true
			if !tierName.MatchString(t.Tier) {
				bad(tk+".tier", "must be a tier name like quick or refleak, got %q", t.Tier)
			} else if !tiers[t.Tier] {
				bad(tk+".tier", "no pool serves tier %q", t.Tier)
			}
			if RoleRank(t.MinRole) < 0 {
				bad(tk+".min_role", "must be one of read, triage, write, maintain, admin, got %q", t.MinRole)
			}
		}
	}

	if len(c.Pools) == 0 {
		bad("pools", "must list at least one pool")
	}
	seenPool := map[string]bool{}
	seenJob := map[string]bool{}
	stableTiers := map[string]bool{}
	for i, p := range c.Pools {
		k := fmt.Sprintf("pools[%d]", i)
		if !poolName.MatchString(p.Name) {
			bad(k+".name", "must be lower-case letters, digits, - and _ (at most 63), got %q", p.Name)
		} else if seenPool[p.Name] {
			bad(k+".name", "%q is listed twice", p.Name)
		}
		seenPool[p.Name] = true
		if _, err := ParsePlatform(p.Platform); err != nil {
			bad(k+".platform", "%v", err)
		}
		if !tierName.MatchString(p.Tier) {
			bad(k+".tier", "must be a tier name like quick or refleak, got %q", p.Tier)
		}
		if p.Stable {
			stableTiers[p.Tier] = true
		}
		if len(p.Labels) == 0 {
			bad(k+".labels", "must not be empty")
		}
		if len(p.Labels) > 100 {
			bad(k+".labels", "GitHub allows at most 100 runner labels, got %d", len(p.Labels))
		}
		seenL := map[string]bool{}
		for j, l := range p.Labels {
			switch {
			case strings.TrimSpace(l) == "" || l != strings.TrimSpace(l):
				bad(fmt.Sprintf("%s.labels[%d]", k, j), "must be non-empty without surrounding spaces, got %q", l)
			case seenL[strings.ToLower(l)]:
				bad(fmt.Sprintf("%s.labels[%d]", k, j), "%q is listed twice (labels are case-insensitive)", l)
			}
			seenL[strings.ToLower(l)] = true
		}
		if !nomadJobID.MatchString(p.NomadJob) {
			bad(k+".nomad_job", "must be a Nomad job ID (letters, digits, . _ -; no /), got %q", p.NomadJob)
		} else if seenJob[p.NomadJob] {
			bad(k+".nomad_job", "%q is used by two pools", p.NomadJob)
		}
		seenJob[p.NomadJob] = true
		if p.MaxRunners < 1 {
			bad(k+".max_runners", "must be at least 1, got %d", p.MaxRunners)
		}
		if p.JobTimeout <= 0 {
			bad(k+".job_timeout", "must be positive, got %s", p.JobTimeout)
		}
		if p.WaitTimeout <= 0 {
			bad(k+".wait_timeout", "must be positive, got %s", p.WaitTimeout)
		}
		checkPlacement(bad, k, p)
		validateSource(p, k, bad)
		validateRunner(p, k, bad)
	}
	for i, r := range c.Repositories {
		for j, t := range r.Triggers {
			if tiers[t.Tier] && !stableTiers[t.Tier] {
				bad(fmt.Sprintf("repositories[%d].triggers[%d].tier", i, j), "tier %q has no stable pool, so a label would build nothing", t.Tier)
			}
		}
	}

	c.Runner.validate(bad)
	c.validateActRunner(bad)
	checkURL(bad, "nomad.address", c.Nomad.Address)
	if c.Nomad.Namespace == "" {
		bad("nomad.namespace", "must not be empty")
	}
	checkNomadTLS(bad, c.Nomad)
	return errors.Join(errs...)
}

func checkURL(bad func(string, string, ...any), key, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad(key, "must be an http(s) URL, got %q", s)
	}
}

// checkContextPrefix says what is wrong with a result-name prefix: the
// name (prefix + pool) is a status context or check run name, shown in the
// PR's checks list; it must be short, printable and on one line.
func checkContextPrefix(p string) string {
	switch {
	case p == "":
		return "must not be empty (default buildfleet/)"
	case len(p) > 64:
		return "must be at most 64 bytes"
	case strings.TrimSpace(p) != p:
		return "must not start or end with spaces"
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return "must not hold control characters"
		}
	}
	return ""
}
