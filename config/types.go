package config

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Secret is a string that never prints: fmt, slog, YAML and JSON all see
// "REDACTED" (or "" when unset). Use Reveal where the value is needed.
type Secret string

const redacted = "REDACTED"

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer, so %#v does not leak either.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler (JSON and YAML use it).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalYAML implements yaml.Marshaler.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// Duration is a time.Duration written as "90s", "4h" in the config.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String implements fmt.Stringer.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("not a duration (e.g. 90s, 4h): %q", b)
	}
	*d = Duration(v)
	return nil
}

// Roles a sender may have on a repository, lowest first: the role_name
// values of GitHub's collaborator-permission endpoint.
var roles = []string{"read", "triage", "write", "maintain", "admin"}

// RoleRank orders roles; it returns -1 for an unknown role. GitHub's legacy
// permission names ("pull", "push") map to their roles.
func RoleRank(role string) int {
	switch strings.ToLower(role) {
	case "pull":
		role = "read"
	case "push":
		role = "write"
	}
	for i, r := range roles {
		if strings.EqualFold(r, role) {
			return i
		}
	}
	return -1
}

// RoleAtLeast reports whether role reaches minRole. Unknown roles reach
// nothing.
func RoleAtLeast(role, minRole string) bool {
	r, m := RoleRank(role), RoleRank(minRole)
	return r >= 0 && m >= 0 && r >= m
}

// Platform is a pool platform split into Nomad's node attributes.
type Platform struct {
	// Name is the canonical "<os>-<arch>": the arch as the OS itself names
	// it (x86_64; aarch64 on Linux and FreeBSD, arm64 on macOS and Windows).
	Name string
	// Kernel is ${attr.kernel.name}: linux, darwin, windows, freebsd.
	Kernel string
	// Arch is ${attr.cpu.arch}: amd64, arm64.
	Arch string
}

var platformOS = map[string]string{
	"linux": "linux", "macos": "darwin", "windows": "windows", "freebsd": "freebsd",
}

// platformArch maps the arch names a platform may be written with to Go's
// (${attr.cpu.arch}). Go's own "amd64" is not one: platforms are named the
// way their OS names the machine, and one spelling per host keeps node
// pools and pool configs from drifting apart.
var platformArch = map[string]string{
	"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64",
	// GitHub ships no runner for these: such pools run github-act-runner.
	"riscv64": "riscv64", "s390x": "s390x", "ppc64le": "ppc64le",
}

// ParsePlatform splits "<os>-<arch>" (linux-x86_64, macos-arm64, …).
func ParsePlatform(s string) (Platform, error) {
	osName, arch, ok := strings.Cut(s, "-")
	if !ok {
		return Platform{}, fmt.Errorf("must be <os>-<arch>, e.g. linux-x86_64, got %q", s)
	}
	k, ok := platformOS[osName]
	if !ok {
		return Platform{}, fmt.Errorf("unknown os %q in %q (linux, macos, windows, freebsd)", osName, s)
	}
	a, ok := platformArch[arch]
	if !ok {
		return Platform{}, fmt.Errorf("unknown arch %q in %q (x86_64, aarch64, arm64, riscv64, s390x, ppc64le)", arch, s)
	}
	name := osName + "-x86_64"
	if a != "amd64" && a != "arm64" {
		name = osName + "-" + arch
	}
	if a == "arm64" {
		name = osName + "-aarch64"
		if k == "darwin" || k == "windows" {
			name = osName + "-arm64"
		}
	}
	return Platform{Name: name, Kernel: k, Arch: a}, nil
}

func equalFold(a, b string) bool { return strings.EqualFold(a, b) }
