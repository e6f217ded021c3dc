package config

import (
	"regexp"
	"slices"
	"strings"
)

var (
	// nodePoolName is Nomad's node pool name rule.
	nodePoolName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	// datacenterGlob is a Nomad datacenter name, possibly with * globs.
	datacenterGlob = regexp.MustCompile(`^[A-Za-z0-9_*-]{1,128}$`)
)

// checkPlacement checks the keys PlacementOf reads; k is "pools[i]".
func checkPlacement(bad func(string, string, ...any), k string, p Pool) {
	if p.NodePool != "" && !nodePoolName.MatchString(p.NodePool) {
		bad(k+".node_pool", "must be a Nomad node pool name (letters, digits, _ and -, at most 128), got %q", p.NodePool)
	}
	if p.NodePool == "all" {
		bad(k+".node_pool", `"all" is Nomad's built-in pool of every node, donors' or not; name the donors' pool`)
	}
	for i, dc := range p.Datacenters {
		if !datacenterGlob.MatchString(dc) {
			bad(k+".datacenters", "[%d] must be a datacenter name or glob (letters, digits, _, - and *), got %q", i, dc)
		}
	}
	if p.Driver != "" && !slices.Contains(Drivers, p.Driver) {
		bad(k+".driver", "must be one of %s, got %q", strings.Join(Drivers, ", "), p.Driver)
	}
	if plat, err := ParsePlatform(p.Platform); err == nil && plat.Kernel != "linux" && (p.Driver == DriverExec || p.Driver == DriverDocker) {
		bad(k+".driver", "%s runs on Linux hosts only; %s hosts use raw_exec", p.Driver, p.Platform)
	}
	if p.MinIsolation != "" && IsolationRank(p.MinIsolation) < 0 {
		bad(k+".min_isolation", "must be one of %s, got %q", strings.Join(Isolations, ", "), p.MinIsolation)
	}
}

// checkNomadTLS checks that a client certificate comes with its key.
func checkNomadTLS(bad func(string, string, ...any), n Nomad) {
	switch {
	case n.ClientCertFile != "" && n.ClientKeyFile == "":
		bad("nomad.client_key_file", "must be set with nomad.client_cert_file")
	case n.ClientKeyFile != "" && n.ClientCertFile == "":
		bad("nomad.client_cert_file", "must be set with nomad.client_key_file")
	}
}
