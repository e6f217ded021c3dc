// Package actrunner tells the fleet which github-act-runner archive a
// runner of a platform downloads and what its SHA-256 must be. github-act-runner
// is the runner of platforms GitHub ships none for; `make runners` builds
// its archives and their SHA256SUMS, the operator serves them at
// act_runner.url, and the manager reads the checksums once at start. A
// runner gets the URL and checksum of its archive in dispatch meta, like
// GitHub's runner packages, and the bootstrap refuses anything else.
package actrunner

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/buildfleet/buildfleet/config"
)

// Package is one archive: where to get it, its SHA-256, its version.
type Package struct {
	URL, SHA256, Version string
}

// Packages are the archives of one SHA256SUMS, by Go platform
// ("freebsd/amd64").
type Packages struct {
	byPlatform map[string]Package
}

// archiveName is how `make runners` names an archive.
var archiveName = regexp.MustCompile(`^github-act-runner-(v[0-9]+\.[0-9]+\.[0-9]+[0-9A-Za-z.+-]*)-([a-z0-9]+)-([a-z0-9]+)\.tar\.gz$`)

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Load reads c.Checksums and resolves each archive's URL under c.URL.
func Load(c config.ActRunner) (*Packages, error) {
	b, err := os.ReadFile(c.Checksums)
	if err != nil {
		return nil, fmt.Errorf("reading act_runner.checksums: %w", err)
	}
	return Parse(b, c.URL, c.Checksums)
}

// Parse reads SHA256SUMS lines ("<sha256>  <file>", as sha256sum writes
// them); name names the file in errors.
func Parse(sums []byte, baseURL, name string) (*Packages, error) {
	p := &Packages{byPlatform: map[string]Package{}}
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		sum, file, ok := strings.Cut(line, " ")
		file = strings.TrimPrefix(strings.TrimSpace(file), "*")
		m := archiveName.FindStringSubmatch(file)
		if !ok || !sha256Hex.MatchString(sum) || m == nil {
			return nil, fmt.Errorf("%s line %d: want \"<sha256>  github-act-runner-<version>-<os>-<arch>.tar.gz\", got %q", name, n, line)
		}
		plat := m[2] + "/" + m[3]
		if old, dup := p.byPlatform[plat]; dup {
			return nil, fmt.Errorf("%s line %d: a second archive for %s (%s and %s)", name, n, plat, old.Version, m[1])
		}
		p.byPlatform[plat] = Package{URL: baseURL + file, SHA256: sum, Version: m[1]}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(p.byPlatform) == 0 {
		return nil, fmt.Errorf("%s lists no github-act-runner archive", name)
	}
	return p, nil
}

// For returns the archive for a platform.
func (p *Packages) For(plat config.Platform) (Package, error) {
	pkg, ok := p.byPlatform[plat.Kernel+"/"+plat.Arch]
	if !ok {
		return Package{}, fmt.Errorf("no github-act-runner archive for %s/%s in act_runner.checksums (run make runners for it)", plat.Kernel, plat.Arch)
	}
	return pkg, nil
}

// Check reports pools that run github-act-runner on a platform the
// checksums have no archive for: such a pool could never start a runner.
func (p *Packages) Check(pools []config.Pool) error {
	for _, pool := range pools {
		if pool.Runner != config.RunnerActRunner {
			continue
		}
		plat, err := config.ParsePlatform(pool.Platform)
		if err != nil {
			return fmt.Errorf("pool %s: %w", pool.Name, err)
		}
		if _, err := p.For(plat); err != nil {
			return fmt.Errorf("pool %s: %w", pool.Name, err)
		}
	}
	return nil
}
