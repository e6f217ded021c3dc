package config

import "regexp"

// scaleSetName is what a runner scale set's name may be here: GitHub takes
// it as a runs-on label too, so label characters, no spaces.
var scaleSetName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// validateSource checks a pool's source and scale set settings.
func validateSource(p Pool, k string, bad func(key, format string, args ...any)) {
	switch p.Source {
	case SourceWebhook:
		if p.ScaleSet != (ScaleSet{}) {
			bad(k+".scale_set", "is only for source %q (source is %q)", SourceScaleSet, p.Source)
		}
	case SourceScaleSet:
		if !scaleSetName.MatchString(p.ScaleSet.Name) {
			bad(k+".scale_set.name", "must be letters, digits, . _ - (at most 100), got %q", p.ScaleSet.Name)
		}
		if p.ScaleSet.RunnerGroup == "" {
			bad(k+".scale_set.runner_group", "must not be empty")
		}
	default:
		bad(k+".source", "must be %q or %q, got %q", SourceWebhook, SourceScaleSet, p.Source)
	}
}

// ScaleSetPools returns the pools whose demand comes from a runner scale
// set.
func (c Config) ScaleSetPools() []Pool {
	var out []Pool
	for _, p := range c.Pools {
		if p.Source == SourceScaleSet {
			out = append(out, p)
		}
	}
	return out
}
