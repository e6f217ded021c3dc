package manager

import (
	"github.com/buildfleet/buildfleet/manager/scaleset"
)

// scaleSets builds the scale-set source when a pool has source scaleset:
// one listener per such pool and repository, sharing the store and the
// GitHub client; what it stores wakes the fleet.
func (m *Manager) scaleSets() (*scaleset.Source, error) {
	if len(m.cfg.ScaleSetPools()) == 0 {
		return nil, nil
	}
	return scaleset.New(scaleset.Options{
		Config: m.cfg, Store: m.store, GitHub: m.gh, Registerer: m.reg,
		Notify: func() { m.fleet.Wake() },
		Logger: m.log.With("component", "scaleset"),
	})
}
