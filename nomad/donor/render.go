package donor

import (
	"bytes"
	"errors"
	"strings"
	"text/template"
	"time"

	"github.com/buildfleet/buildfleet/config"
)

// osLayout is where the agent keeps its state and configuration on one OS.
type osLayout struct {
	DataDir, ConfDir, Sep string
	// Service says how the agent is run as a service there.
	Service string
}

var layouts = map[string]osLayout{
	"linux":   {DataDir: "/var/lib/nomad", ConfDir: "/etc/nomad.d", Sep: "/", Service: "systemd: TimeoutStopSec= in nomad.service must exceed the drain deadline"},
	"darwin":  {DataDir: "/usr/local/var/nomad", ConfDir: "/usr/local/etc/nomad.d", Sep: "/", Service: "launchd: ExitTimeOut in the LaunchDaemon plist must exceed the drain deadline"},
	"freebsd": {DataDir: "/var/db/nomad", ConfDir: "/usr/local/etc/nomad", Sep: "/", Service: "rc.d: stop the service with a timeout that exceeds the drain deadline"},
	"windows": {DataDir: `C:\ProgramData\nomad\data`, ConfDir: `C:\ProgramData\nomad\conf`, Sep: `\`, Service: "Windows service: stopping it drains first; give it the time"},
}

// cloudFingerprinters are the client fingerprinters that probe cloud
// metadata endpoints. A donated machine is not a cloud instance of ours, the
// probes slow start-up, and env_aws aborts the agent when AWS_CA_BUNDLE is
// set.
var cloudFingerprinters = []string{"env_aws", "env_gce", "env_azure", "env_digitalocean"}

// view is what the template sees; every string in it is already quoted.
type view struct {
	Platform, Kernel, Arch string
	Name, Datacenter       string
	DataDir                string
	Servers                string
	NodePool               string
	Slots                  int
	Tiers                  string
	Owner, Contact         string
	Deadline               string
	DeadlineText           string
	Denylist               string
	Driver                 string
	Docker, Exec           bool
	Isolation              string
	CAFile, Cert, Key      string
	Service                string
}

// Render returns the client agent configuration of the host o describes,
// or every problem with o.
func Render(o Options) ([]byte, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if len(o.Servers) == 0 {
		return nil, errors.New("--servers: is required: the Nomad servers' host:4647 addresses, from the operator")
	}
	o = o.withDefaults()
	plat, _ := config.ParsePlatform(o.Platform) // checked by Validate
	l := layouts[plat.Kernel]
	tls := func(f string) string { return quote(l.ConfDir + l.Sep + "tls" + l.Sep + f) }
	v := view{
		Platform:     quote(plat.Name),
		Kernel:       plat.Kernel,
		Arch:         plat.Arch,
		Datacenter:   quote(o.Datacenter),
		DataDir:      quote(l.DataDir),
		Servers:      quoteList(o.Servers),
		NodePool:     quote(o.NodePool),
		Slots:        o.Slots,
		Tiers:        quote(strings.Join(o.Tiers, ",")),
		Owner:        quote(o.Owner),
		Contact:      quote(o.Contact),
		Deadline:     quote(durationHCL(o.DrainDeadline)),
		DeadlineText: durationHCL(o.DrainDeadline),
		Denylist:     quote(strings.Join(cloudFingerprinters, ",")),
		Driver:       quote(o.Driver),
		Docker:       o.Driver == DriverDocker,
		Exec:         o.Driver == DriverExec,
		Isolation:    quote(o.Isolation),
		CAFile:       tls("ca.pem"),
		Cert:         tls("client.pem"),
		Key:          tls("client-key.pem"),
		Service:      l.Service,
	}
	if o.Name != "" {
		v.Name = quote(o.Name)
	}
	var b bytes.Buffer
	if err := clientTmpl.Execute(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// durationHCL writes d the way Nomad parses durations, without zero units:
// 5h, 4h30m.
func durationHCL(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

var clientTmpl = template.Must(template.New("client").Parse(`# Nomad client agent configuration for a buildfleet donor host.
# Rendered by "buildfleet donor config"; platform {{.Platform}} ({{.Kernel}}/{{.Arch}}).
# Nothing secret is in this file: the TLS certificate and key come from the
# fleet's operator and go where the tls block below says.
{{- if .Name}}

name       = {{.Name}}
{{- end}}
datacenter = {{.Datacenter}}
data_dir   = {{.DataDir}}
log_level  = "INFO"

# Stopping the agent (SIGINT or SIGTERM) leaves the cluster and drains the
# node first; see drain_on_shutdown.
leave_on_interrupt = true
leave_on_terminate = true

# No calls to the update checker from a donated machine.
disable_update_check = true

client {
  enabled = true
  servers = {{.Servers}}

  # Runner jobs of this platform are placed in this node pool.
  node_pool = {{.NodePool}}

  # Slots: how many allocations (builds) may run here at once. Nomad counts
  # every allocation on the node, not only buildfleet's runners.
  node_max_allocs = {{.Slots}}

  meta {
    # Tiers this host builds; runner jobs of a tier need it listed.
    buildfleet_tiers     = {{.Tiers}}
    buildfleet_platform  = {{.Platform}}
    # How runners are kept from this host and from each other (none, user,
    # container, vm); pools with a higher min_isolation never place here.
    buildfleet_isolation = {{.Isolation}}
    # Who lends this host and how to reach them.
    buildfleet_owner     = {{.Owner}}
    buildfleet_contact   = {{.Contact}}
  }

  # Stopping the agent drains the node: running builds may finish for up to
  # {{.DeadlineText}}, longer than a refleak build, and no new build starts.
  # {{.Service}}.
  drain_on_shutdown {
    deadline           = {{.Deadline}}
    force              = false
    ignore_system_jobs = false
  }

  options {
    # Donated hosts are not cloud instances of the fleet: skip the cloud
    # metadata probes.
    "fingerprint.denylist" = {{.Denylist}}
    # Only the driver that runs buildfleet's runners.
    "driver.allowlist"     = {{.Driver}}
  }
}
{{if .Docker}}
# Runners run in the buildfleet runner image (runner-images/linux).
plugin "docker" {
  config {
    allow_privileged = false
    volumes {
      enabled = false
    }
  }
}
{{- else if .Exec}}
# Runners run in Nomad's exec driver (built in, enabled on Linux when the
# agent runs as root): a chroot with its own PID and IPC namespaces and
# cgroups, as an unprivileged user.
{{- else}}
# raw_exec runs the runner as the user the Nomad agent runs as. Run the
# agent as a dedicated, unprivileged user on a machine (or VM) that holds
# nothing else of value: pull request code from the internet runs here.
plugin "raw_exec" {
  config {
    enabled = true
  }
}
{{- end}}

# Mutual TLS with the servers. Put the files the operator gives you here; the
# key stays readable by the agent's user only.
tls {
  http = true
  rpc  = true

  ca_file   = {{.CAFile}}
  cert_file = {{.Cert}}
  key_file  = {{.Key}}

  # Only a certificate issued to a server of this region is accepted.
  verify_server_hostname = true
}

# The agent's HTTP API is HTTPS too. For the nomad CLI on this host
# (nomad node status -self, eligibility, drain), set:
#   NOMAD_ADDR=https://127.0.0.1:4646
#   NOMAD_CACERT={{.CAFile}}
#   NOMAD_CLIENT_CERT={{.Cert}}
#   NOMAD_CLIENT_KEY={{.Key}}
#   NOMAD_TLS_SERVER_NAME=client.<region>.nomad (region "global" unless told)
`))
