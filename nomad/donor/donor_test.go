package donor

import (
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
)

func base() Options {
	return Options{
		Platform: "linux-x86_64",
		Tiers:    []string{"quick", "refleak"},
		Slots:    2,
		Owner:    "Jane Doe",
		Contact:  "jane@example.org",
		Servers:  []string{"nomad.example.org:4647", "10.0.0.2:4647"},
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(*Options)
		want, not []string
	}{
		{
			name: "linux raw_exec defaults",
			want: []string{
				`servers = ["nomad.example.org:4647", "10.0.0.2:4647"]`,
				`node_pool = "buildfleet-linux-x86_64"`,
				`node_max_allocs = 2`,
				`buildfleet_tiers     = "quick,refleak"`,
				`buildfleet_platform  = "linux-x86_64"`,
				`buildfleet_owner     = "Jane Doe"`,
				`buildfleet_contact   = "jane@example.org"`,
				`buildfleet_isolation = "user"`,
				`NOMAD_ADDR=https://127.0.0.1:4646`,
				`deadline           = "5h"`,
				`force              = false`,
				`ignore_system_jobs = false`,
				`"fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"`,
				`"driver.allowlist"     = "raw_exec"`,
				`leave_on_interrupt = true`,
				`leave_on_terminate = true`,
				`plugin "raw_exec" {`,
				`data_dir   = "/var/lib/nomad"`,
				`datacenter = "dc1"`,
				`ca_file   = "/etc/nomad.d/tls/ca.pem"`,
				`cert_file = "/etc/nomad.d/tls/client.pem"`,
				`key_file  = "/etc/nomad.d/tls/client-key.pem"`,
				`verify_server_hostname = true`,
				`TimeoutStopSec`,
			},
			not: []string{`plugin "docker"`, "\nname "},
		},
		{
			name: "linux docker, pool, dc, name",
			edit: func(o *Options) {
				o.Driver, o.NodePool, o.Datacenter, o.Name = "docker", "big-boxes", "ams1", "box-1.example.org"
			},
			want: []string{`plugin "docker" {`, `allow_privileged = false`, `"driver.allowlist"     = "docker"`,
				`node_pool = "big-boxes"`, `datacenter = "ams1"`, `name       = "box-1.example.org"`},
			not: []string{`plugin "raw_exec"`},
		},
		{
			name: "windows",
			edit: func(o *Options) { o.Platform = "windows-x86_64"; o.Tiers = []string{"quick"}; o.Slots = 1 },
			want: []string{`data_dir   = "C:\\ProgramData\\nomad\\data"`, `ca_file   = "C:\\ProgramData\\nomad\\conf\\tls\\ca.pem"`,
				`plugin "raw_exec" {`, `node_pool = "buildfleet-windows-x86_64"`, `buildfleet_tiers     = "quick"`, `node_max_allocs = 1`,
				`buildfleet_isolation = "none"`},
		},
		{
			name: "macos",
			edit: func(o *Options) { o.Platform = "macos-arm64" },
			want: []string{`data_dir   = "/usr/local/var/nomad"`, `ca_file   = "/usr/local/etc/nomad.d/tls/ca.pem"`, `launchd`, `(darwin/arm64)`,
				`buildfleet_isolation = "none"`},
		},
		{
			name: "freebsd",
			edit: func(o *Options) { o.Platform = "freebsd-x86_64" },
			want: []string{`data_dir   = "/var/db/nomad"`, `plugin "raw_exec" {`, `buildfleet_isolation = "none"`},
		},
		{
			name: "longer deadline",
			edit: func(o *Options) { o.DrainDeadline = 7*time.Hour + 30*time.Minute },
			want: []string{`deadline           = "7h30m"`},
		},
		{
			name: "url contact",
			edit: func(o *Options) { o.Contact = "https://example.org/donors/jane" },
			want: []string{`buildfleet_contact   = "https://example.org/donors/jane"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base()
			if tt.edit != nil {
				tt.edit(&o)
			}
			b, err := Render(o)
			if err != nil {
				t.Fatal(err)
			}
			out := string(b)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %s\n%s", w, out)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out, n) {
					t.Errorf("output has %s", n)
				}
			}
		})
	}
}

func TestValidateNamesTheFlag(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"empty platform", func(o *Options) { o.Platform = "" }, "--platform: is required"},
		{"unknown os", func(o *Options) { o.Platform = "plan9-x86_64" }, `--platform: unknown os "plan9"`},
		{"unknown arch", func(o *Options) { o.Platform = "linux-mips" }, `--platform: unknown arch "mips"`},
		{"no tiers", func(o *Options) { o.Tiers = nil }, "--tiers: is required"},
		{"bad tier", func(o *Options) { o.Tiers = []string{"Quick"} }, `--tiers: "Quick" is not a tier name`},
		{"tier injection", func(o *Options) { o.Tiers = []string{`quick"`} }, `--tiers: "quick\"" is not a tier name`},
		{"duplicate tier", func(o *Options) { o.Tiers = []string{"quick", "quick"} }, `--tiers: "quick" is listed twice`},
		{"zero slots", func(o *Options) { o.Slots = 0 }, "--slots: must be 1..64, got 0"},
		{"too many slots", func(o *Options) { o.Slots = 65 }, "--slots: must be 1..64, got 65"},
		{"no owner", func(o *Options) { o.Owner = "  " }, "--owner: is required"},
		{"long owner", func(o *Options) { o.Owner = strings.Repeat("x", 513) }, "--owner: is longer than 512 bytes"},
		{"no contact", func(o *Options) { o.Contact = "" }, "--contact: is required"},
		{"contact not mail", func(o *Options) { o.Contact = "jane" }, "--contact: \"jane\" is neither an e-mail address nor an http(s) URL"},
		{"contact no domain dot", func(o *Options) { o.Contact = "jane@localhost" }, "--contact:"},
		{"contact with name", func(o *Options) { o.Contact = "Jane <jane@example.org>" }, "--contact:"},
		{"contact ftp", func(o *Options) { o.Contact = "ftp://example.org" }, `--contact: "ftp://example.org" is not an http(s) URL`},
		{"contact quote", func(o *Options) { o.Contact = `a"b@example.org` }, "--contact:"},
		{"server no port", func(o *Options) { o.Servers = []string{"nomad.example.org"} }, "--servers: \"nomad.example.org\" is not host:port"},
		{"server bad port", func(o *Options) { o.Servers = []string{"nomad.example.org:0"} }, "--servers: \"nomad.example.org:0\": port must be 1..65535"},
		{"server bad host", func(o *Options) { o.Servers = []string{`no"mad:4647`} }, `is not a host name or IP address`},
		{"bad pool", func(o *Options) { o.NodePool = "a b" }, `--node-pool: "a b" is not a Nomad node pool name`},
		{"bad driver", func(o *Options) { o.Driver = "podman" }, `--driver: must be raw_exec, exec or docker, got "podman"`},
		{"exec on windows", func(o *Options) { o.Platform, o.Driver = "windows-x86_64", "exec" }, "--driver: exec is offered on Linux hosts only"},
		{"go arch name", func(o *Options) { o.Platform = "linux-amd64" }, `--platform: unknown arch "amd64"`},
		{"unknown tier", func(o *Options) { o.Tiers = []string{"quik"} }, `--tiers: unknown tier "quik" (known: quick, refleak)`},
		{"unknown isolation", func(o *Options) { o.Isolation = "jail" }, `--isolation: must be one of none, user, container, vm, got "jail"`},
		{"raw_exec claims container", func(o *Options) { o.Isolation = "container" }, "--isolation: raw_exec gives at most user isolation"},
		{"raw_exec on macOS claims user", func(o *Options) { o.Platform = "macos-arm64"; o.Isolation = "user" }, "--isolation: raw_exec gives at most none isolation"},
		{"docker on macos", func(o *Options) { o.Platform, o.Driver = "macos-arm64", "docker" }, "--driver: docker is offered on Linux hosts only"},
		{"bad datacenter", func(o *Options) { o.Datacenter = "dc 1" }, "--datacenter:"},
		{"bad name", func(o *Options) { o.Name = "-x" }, `--name: "-x" is not a host name`},
		{"short deadline", func(o *Options) { o.DrainDeadline = time.Hour }, "--drain-deadline: 1h0m0s is shorter than a refleak build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base()
			tt.edit(&o)
			_, err := Render(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRenderNeedsServers(t *testing.T) {
	o := base()
	o.Servers = nil
	if _, err := Render(o); err == nil || !strings.Contains(err.Error(), "--servers: is required") {
		t.Fatalf("err = %v", err)
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	err := Options{Slots: 100}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, flag := range []string{"--platform", "--tiers", "--slots", "--owner", "--contact"} {
		if !strings.Contains(err.Error(), flag) {
			t.Errorf("error lacks %s: %v", flag, err)
		}
	}
}

// hostile values are what a donor (or a copy-pasted web form) might pass as
// owner: each must stay inside its own string.
var hostile = []string{
	`Jane "Doe"`,
	"Jane\n}\nplugin \"docker\" { config { allow_privileged = true } }\nclient {",
	`${attr.unique.hostname}`,
	`%{if true}x%{endif}`,
	`back\slash\" end`,
	"tab\tcr\r bell\a nul\x00 del\x7f",
	"bad utf8 \xff\xfe",
	"Zoë 大 🙂",
	`"` + "\n" + `}`,
}

func TestOwnerCannotInject(t *testing.T) {
	ref, err := Render(base())
	if err != nil {
		t.Fatal(err)
	}
	for _, owner := range hostile {
		o := base()
		o.Owner = owner
		b, err := Render(o)
		if err != nil {
			t.Fatalf("%q: %v", owner, err)
		}
		out := string(b)
		// The rendering differs from the reference in the owner line only.
		got, want := strings.Split(out, "\n"), strings.Split(string(ref), "\n")
		if len(got) != len(want) {
			t.Fatalf("%q: %d lines, want %d:\n%s", owner, len(got), len(want), out)
		}
		for i := range got {
			if got[i] != want[i] && !strings.HasPrefix(got[i], "    buildfleet_owner     = \"") {
				t.Errorf("%q: line %d changed: %s", owner, i+1, got[i])
			}
		}
		for _, bad := range []string{"${", "%{", "\x00", "\r", "\a"} {
			if strings.Contains(out, bad) {
				t.Errorf("%q: output contains %q", owner, bad)
			}
		}
	}
}

func TestQuote(t *testing.T) {
	tests := map[string]string{
		`plain`:      `"plain"`,
		`a"b`:        `"a\"b"`,
		`C:\x`:       `"C:\\x"`,
		"l1\nl2":     `"l1\nl2"`,
		`${x}`:       `"\u0024{x}"`,
		`100%{`:      `"100\u0025{"`,
		"\x01":       `"\u0001"`,
		"\xff":       `"\ufffd"`,
		"é":          `"é"`,
		"\U000e0001": `"\U000e0001"`,
	}
	for in, want := range tests {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestDrainDeadline(t *testing.T) {
	pool := func(tier string, d time.Duration) config.Pool {
		return config.Pool{Tier: tier, JobTimeout: config.Duration(d)}
	}
	tests := []struct {
		name  string
		pools []config.Pool
		want  time.Duration
	}{
		{"no pools", nil, 5 * time.Hour},
		{"short refleak", []config.Pool{pool("refleak", 3*time.Hour)}, 5 * time.Hour},
		{"long refleak", []config.Pool{pool("refleak", 4*time.Hour), pool("refleak", 6*time.Hour+30*time.Minute)}, 7*time.Hour + 30*time.Minute},
		{"quick ignored", []config.Pool{pool("quick", 9*time.Hour)}, 5 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DrainDeadline(config.Config{Pools: tt.pools}); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDurationHCL(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Hour:                "5h",
		7*time.Hour + 30*time.Minute: "7h30m",
		5*time.Hour + 30*time.Second: "5h0m30s",
		6*time.Hour + 10*time.Minute: "6h10m",
		10 * time.Hour:               "10h",
	} {
		if got := durationHCL(d); got != want {
			t.Errorf("durationHCL(%s) = %s, want %s", d, got, want)
		}
	}
}

// fleet is a config with pools on two platforms; the docker pool has its
// own node pool and needs container isolation.
func fleet() config.Config {
	c := config.Default()
	c.Pools = []config.Pool{
		{Name: "lq", Platform: "linux-x86_64", Tier: "quick"},
		{Name: "lr", Platform: "linux-x86_64", Tier: "refleak", MinIsolation: "user"},
		{Name: "ma", Platform: "linux-arm64", Tier: "quick", Driver: "docker", NodePool: "arm-docker", MinIsolation: "container", Datacenters: []string{"ams*"}},
		{Name: "mq", Platform: "macos-arm64", Tier: "quick"},
	}
	c.ApplyDefaults()
	return c
}

func TestForFleet(t *testing.T) {
	tests := []struct {
		name           string
		edit           func(*Options)
		want           string // error text; "" = ok
		pool, driver   string
		wantIsolation  string
		renderContains string
	}{
		{"linux both tiers", nil, "", "buildfleet-linux-x86_64", "raw_exec", "user", `node_pool = "buildfleet-linux-x86_64"`},
		{"arm docker pool", func(o *Options) { o.Platform, o.Tiers, o.Datacenter = "linux-aarch64", []string{"quick"}, "ams2" }, "",
			"arm-docker", "docker", "container", `buildfleet_isolation = "container"`},
		{"platform without pools", func(o *Options) { o.Platform = "windows-x86_64" }, "--platform: no pool of the fleet config builds on windows-x86_64 (platforms: linux-x86_64, linux-aarch64, macos-arm64)", "", "", "", ""},
		{"tier no pool of the platform serves", func(o *Options) { o.Platform = "macos-arm64" }, `--tiers: unknown tier "refleak" (known: quick)`, "", "", "", ""},
		{"typo tier", func(o *Options) { o.Tiers = []string{"quik"} }, `--tiers: unknown tier "quik" (known: quick, refleak)`, "", "", "", ""},
		{"driver not the pools'", func(o *Options) { o.Driver = "docker" }, "--driver: pool lq runs its runners with raw_exec, not docker", "", "", "", ""},
		{"node pool not the pools'", func(o *Options) { o.NodePool = "mine" }, `--node-pool: pool lq places its runners in node pool "buildfleet-linux-x86_64", not "mine"`, "", "", "", ""},
		{"isolation below the minimum", func(o *Options) { o.Isolation = "none" }, "--isolation: pool lr needs min_isolation user; this host declares none", "", "", "", ""},
		{"datacenter outside the pool's", func(o *Options) { o.Platform, o.Tiers = "linux-aarch64", []string{"quick"} }, "--datacenter: pool ma places its runners in datacenters ams*, not dc1", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base()
			if tt.edit != nil {
				tt.edit(&o)
			}
			got, err := o.ForFleet(fleet())
			if err == nil {
				_, err = Render(got)
			}
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := got.withDefaults()
			if d.NodePool != tt.pool || d.Driver != tt.driver || d.Isolation != tt.wantIsolation {
				t.Errorf("pool %q driver %q isolation %q", d.NodePool, d.Driver, d.Isolation)
			}
			b, _ := Render(got)
			if !strings.Contains(string(b), tt.renderContains) {
				t.Errorf("rendering lacks %s:\n%s", tt.renderContains, b)
			}
		})
	}
}

// TestDonorMatchesPoolPlacement checks both sides of a placement from the
// one derivation: for every pool of the example config, the donor config
// for its platform and tier has the pool's node pool, a tier meta the
// pool's constraint accepts, the pool's driver allowed, and an isolation
// meta its constraint accepts.
func TestDonorMatchesPoolPlacement(t *testing.T) {
	c := fleet()
	for _, p := range c.Pools {
		pl, err := config.PlacementOf(p)
		if err != nil {
			t.Fatal(err)
		}
		o := base()
		o.Platform, o.Tiers, o.Datacenter = p.Platform, []string{p.Tier}, "ams1"
		o, err = o.ForFleet(c)
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		b, err := Render(o)
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		out := string(b)
		for _, want := range []string{
			`node_pool = "` + pl.NodePool + `"`,
			`"driver.allowlist"     = "` + pl.Driver + `"`,
			`buildfleet_tiers     = "` + p.Tier + `"`,
			`buildfleet_platform  = "` + pl.Platform.Name + `"`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: donor config lacks %s", p.Name, want)
			}
		}
		iso := o.withDefaults().Isolation
		if config.IsolationRank(iso) < config.IsolationRank(pl.MinIsolation) {
			t.Errorf("%s: isolation %s below %s", p.Name, iso, pl.MinIsolation)
		}
	}
}
