// Package donor renders the Nomad client agent configuration of a donated
// host: the node pool and meta that buildfleet's runner jobs are placed by,
// the per-host slot limit, a drain on shutdown long enough for a refleak
// build, the task driver that fits the platform, and TLS placeholders. It
// embeds nothing secret: the TLS files come from the operator.
//
// Every value that reaches the output is validated first and written as an
// escaped HCL string, so a donor's name or contact cannot add configuration.
package donor

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/buildfleet/buildfleet/config"
)

// Drivers a donor may run runners with: the pools' drivers.
const (
	DriverRawExec = config.DriverRawExec
	DriverExec    = config.DriverExec
	DriverDocker  = config.DriverDocker
)

// MinDrainDeadline is the shortest drain-on-shutdown deadline rendered: longer
// than a refleak build (2–3 hours) with room to spare. Nomad's default is 1h,
// which would kill a refleak build when the donor stops the agent.
const MinDrainDeadline = 5 * time.Hour

// DrainMargin is added to the longest refleak job timeout of a config.
const DrainMargin = time.Hour

// MaxSlots bounds node_max_allocs; a single host running more concurrent
// CPython builds than this is almost certainly a typo.
const MaxSlots = 64

// Options describe one donated host.
type Options struct {
	// Platform is the pool platform, "<os>-<arch>" (linux-x86_64, macos-arm64…).
	Platform string
	// Tiers are the tiers the host serves, e.g. quick, refleak.
	Tiers []string
	// Slots is how many allocations may run at once (node_max_allocs).
	Slots int
	// Owner and Contact say who lends the host and how to reach them; they
	// are node meta, shown to the operator.
	Owner, Contact string
	// Servers are the Nomad servers' RPC addresses, host:port.
	Servers []string
	// NodePool defaults to the node pool of the platform's pools
	// (config.PlacementOf).
	NodePool string
	// Driver is raw_exec (default), exec or docker (both Linux only).
	Driver string
	// Isolation is the isolation the host declares in its node meta
	// (config.MetaIsolation), checked by pools' min_isolation; defaults
	// to what the driver gives (config.DriverIsolation). A donor may
	// declare less, or vm for a virtual machine that serves builds only.
	Isolation string
	// Datacenter defaults to dc1.
	Datacenter string
	// Name is the node name; empty lets Nomad use the hostname.
	Name string
	// DrainDeadline is drain_on_shutdown's deadline; zero means
	// MinDrainDeadline. It may not be shorter than MinDrainDeadline.
	DrainDeadline time.Duration

	// fleetTiers are the tiers the fleet config's pools of Platform
	// serve (set by ForFleet); nil means config.KnownTiers.
	fleetTiers []string
}

func (o Options) knownTiers() []string {
	if o.fleetTiers != nil {
		return o.fleetTiers
	}
	return config.KnownTiers
}

// DefaultNodePool is the node pool of a platform's hosts when the fleet
// config names none. Pool jobs derive theirs from config.PlacementOf, which
// uses the same rule, so both sides agree.
func DefaultNodePool(platform string) string {
	p, err := config.ParsePlatform(platform)
	if err != nil {
		return "buildfleet-" + platform
	}
	return config.DefaultNodePool(p)
}

// DrainDeadline returns the drain-on-shutdown deadline that fits a config:
// the longest refleak job timeout plus DrainMargin, and never less than
// MinDrainDeadline.
func DrainDeadline(c config.Config) time.Duration {
	d := MinDrainDeadline
	for _, p := range c.Pools {
		if p.Tier != config.TierRefleak {
			continue
		}
		if t := p.JobTimeout.D() + DrainMargin; t > d {
			d = t
		}
	}
	return d
}

var (
	tierRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	poolRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	dcRE     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	hostRE   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
	errEmpty = errors.New("is required")
)

// hostIsolation is the most a driver gives on a platform. raw_exec gives
// each runner a uid of its own only on Linux, where the job's bootstrap
// (runner-images/unix/isolate.sh) can drop root with setpriv; on macOS and
// FreeBSD it refuses to run as root, so the agent runs as one unprivileged
// user that all runners share, and Windows' bootstrap does not switch
// users: isolation none.
func hostIsolation(platform, driver string) string {
	if p, err := config.ParsePlatform(platform); err == nil && driver == DriverRawExec && p.Kernel != "linux" {
		return config.IsolationNone
	}
	return config.DriverIsolation(driver)
}

// withDefaults fills the optional fields.
func (o Options) withDefaults() Options {
	if o.NodePool == "" {
		o.NodePool = DefaultNodePool(o.Platform)
	}
	if o.Driver == "" {
		o.Driver = DriverRawExec
	}
	if o.Isolation == "" {
		o.Isolation = hostIsolation(o.Platform, o.Driver)
	}
	if o.Datacenter == "" {
		o.Datacenter = "dc1"
	}
	if o.DrainDeadline == 0 {
		o.DrainDeadline = MinDrainDeadline
	}
	return o
}

// Validate reports every problem of o, each naming its flag.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	bad := func(flag string, err error) { errs = append(errs, fmt.Errorf("--%s: %w", flag, err)) }

	plat, err := config.ParsePlatform(o.Platform)
	switch {
	case o.Platform == "":
		bad("platform", errEmpty)
	case err != nil:
		bad("platform", err)
	}
	if len(o.Tiers) == 0 {
		bad("tiers", errEmpty)
	}
	seen := map[string]bool{}
	for _, t := range o.Tiers {
		switch {
		case !tierRE.MatchString(t):
			bad("tiers", fmt.Errorf("%q is not a tier name (lower-case letters, digits, _ and -, starting with a letter)", t))
		case !slices.Contains(o.knownTiers(), t):
			bad("tiers", fmt.Errorf("unknown tier %q (known: %s)", t, strings.Join(o.knownTiers(), ", ")))
		case seen[t]:
			bad("tiers", fmt.Errorf("%q is listed twice", t))
		}
		seen[t] = true
	}
	if o.Slots < 1 || o.Slots > MaxSlots {
		bad("slots", fmt.Errorf("must be 1..%d, got %d", MaxSlots, o.Slots))
	}
	if strings.TrimSpace(o.Owner) == "" {
		bad("owner", errEmpty)
	} else if len(o.Owner) > 512 {
		bad("owner", errors.New("is longer than 512 bytes"))
	}
	if err := checkContact(o.Contact); err != nil {
		bad("contact", err)
	}
	for _, s := range o.Servers {
		if err := checkServer(s); err != nil {
			bad("servers", err)
		}
	}
	if !poolRE.MatchString(o.NodePool) {
		bad("node-pool", fmt.Errorf("%q is not a Nomad node pool name (letters, digits, _ and -, at most 128)", o.NodePool))
	}
	switch o.Driver {
	case DriverRawExec:
	case DriverDocker, DriverExec:
		if err == nil && plat.Kernel != "linux" {
			bad("driver", fmt.Errorf("%s is offered on Linux hosts only; use raw_exec on %s", o.Driver, o.Platform))
		}
	default:
		bad("driver", fmt.Errorf("must be raw_exec, exec or docker, got %q", o.Driver))
	}
	if max := hostIsolation(o.Platform, o.Driver); config.IsolationRank(o.Isolation) < 0 {
		bad("isolation", fmt.Errorf("must be one of %s, got %q", strings.Join(config.Isolations, ", "), o.Isolation))
	} else if o.Isolation != config.IsolationVM && config.IsolationRank(o.Isolation) > config.IsolationRank(max) {
		bad("isolation", fmt.Errorf("%s gives at most %s isolation (or vm for a virtual machine that serves builds only), not %s", o.Driver, max, o.Isolation))
	}
	if !dcRE.MatchString(o.Datacenter) {
		bad("datacenter", fmt.Errorf("%q is not a datacenter name (letters, digits, _ and -)", o.Datacenter))
	}
	if o.Name != "" && !nameRE.MatchString(o.Name) {
		bad("name", fmt.Errorf("%q is not a host name (letters, digits, ., _ and -)", o.Name))
	}
	if o.DrainDeadline < MinDrainDeadline {
		bad("drain-deadline", fmt.Errorf("%s is shorter than a refleak build; at least %s", o.DrainDeadline, MinDrainDeadline))
	}
	return errors.Join(errs...)
}

// checkContact accepts a bare e-mail address or an http(s) URL.
func checkContact(s string) error {
	if s == "" {
		return errEmpty
	}
	if strings.ContainsAny(s, " \t\r\n\"") {
		return fmt.Errorf("%q must be an e-mail address or an https URL, without spaces or quotes", s)
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("%q is not an http(s) URL", s)
		}
		return nil
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || !strings.Contains(s[strings.LastIndex(s, "@"):], ".") {
		return fmt.Errorf("%q is neither an e-mail address nor an http(s) URL", s)
	}
	return nil
}

// checkServer accepts host:port with a DNS name or an IP address.
func checkServer(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port (the servers' RPC port, usually 4647)", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port must be 1..65535", s)
	}
	if net.ParseIP(host) == nil && !hostRE.MatchString(host) {
		return fmt.Errorf("%q: %q is not a host name or IP address", s, host)
	}
	return nil
}
