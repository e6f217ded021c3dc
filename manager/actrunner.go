package manager

import (
	"fmt"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/actrunner"
)

// loadActRunner reads act_runner's checksums when a pool runs
// github-act-runner, and refuses to start when a pool's platform has no
// archive there: its builders could never get a runner.
func loadActRunner(c config.Config) (*actrunner.Packages, error) {
	for _, p := range c.Pools {
		if p.Runner != config.RunnerActRunner {
			continue
		}
		pkgs, err := actrunner.Load(c.ActRunner)
		if err != nil {
			return nil, fmt.Errorf("act_runner: %w", err)
		}
		if err := pkgs.Check(c.Pools); err != nil {
			return nil, fmt.Errorf("act_runner: %w", err)
		}
		return pkgs, nil
	}
	return nil, nil
}
