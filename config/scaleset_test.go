package config

import (
	"errors"
	"strings"
	"testing"
)

func TestPoolSource(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Pool)
		wantKey string // "" = valid
		wantMsg string
	}{
		{"webhook by default", func(*Pool) {}, "", ""},
		{"scaleset", func(p *Pool) { p.Source = SourceScaleSet; p.ScaleSet = ScaleSet{} }, "", ""},
		{"unknown source", func(p *Pool) { p.Source = "poll" }, "pools[0].source", `must be "webhook" or "scaleset"`},
		{"scale set on a webhook pool", func(p *Pool) { p.ScaleSet.Name = "x" }, "pools[0].scale_set", "only for source"},
		{"space in the set's name", func(p *Pool) { p.Source = SourceScaleSet; p.ScaleSet.Name = "linux quick" }, "pools[0].scale_set.name", "letters, digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(&c.Pools[0])
			c.ApplyDefaults()
			err := c.Validate()
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			var found bool
			for _, e := range unwrapAll(err) {
				var fe *FieldError
				if errors.As(e, &fe) && fe.Key == tt.wantKey && strings.Contains(fe.Msg, tt.wantMsg) {
					found = true
				}
			}
			if !found {
				t.Errorf("Validate() = %v\nwant a FieldError on %q containing %q", err, tt.wantKey, tt.wantMsg)
			}
		})
	}
	c := valid()
	if c.Pools[0].Source != SourceWebhook || len(c.ScaleSetPools()) != 0 {
		t.Errorf("default source %q", c.Pools[0].Source)
	}
	c.Pools[0].Source = SourceScaleSet
	c.ApplyDefaults()
	if got := c.ScaleSetPools(); len(got) != 1 || got[0].ScaleSet != (ScaleSet{Name: "linux-quick", RunnerGroup: "Default"}) {
		t.Errorf("scale set defaults: %+v", got)
	}
}
