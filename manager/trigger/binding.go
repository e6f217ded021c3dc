package trigger

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/buildfleet/buildfleet/config"
)

// Builder is one entry of the builders input: a pool and the runs-on
// labels of its job (lint.Builder is the workflow's side of it).
type Builder struct {
	Name   string   `json:"name"`
	Labels []string `json:"labels"`
}

// BindingPrefix starts every binding label.
const BindingPrefix = "buildfleet-"

// bindingLabel makes the one label of one builder's job and runner.
//
// GitHub gives a queued job to any idle runner that carries all of the
// job's runs-on labels, whichever run the job belongs to. A runner that
// carried its pool's labels could be taken by any other job asking for
// them (a workflow in a fork's pull request, say). So each builder's job
// runs on a label made here, at dispatch, from 130 random bits, and its JIT
// runner is registered with that label and no other: no job made before the
// dispatch can ask for it, and no other runner carries it.
func bindingLabel() (string, error) {
	var b [17]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("making a binding label: %w", err)
	}
	enc := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
	return BindingPrefix + strings.ToLower(enc[:26]), nil
}

// buildersJSON is the builders input of a request: one builder per pool,
// each with its own binding label as its only runs-on label.
func buildersJSON(pools []config.Pool) (string, error) {
	if len(pools) == 0 {
		return "", fmt.Errorf("no stable pool serves this tier")
	}
	bs := make([]Builder, len(pools))
	for i, p := range pools {
		if p.Source == config.SourceScaleSet {
			// A scale set's jobs ask for the set by name; only jobs the
			// set acquired (the fleet acquires only its own) reach its
			// runners, so the set's label binds instead.
			bs[i] = Builder{Name: p.Name, Labels: []string{p.ScaleSet.Name}}
			continue
		}
		l, err := bindingLabel()
		if err != nil {
			return "", err
		}
		bs[i] = Builder{Name: p.Name, Labels: []string{l}}
	}
	b, err := json.Marshal(bs)
	return string(b), err
}

// BuilderOf finds the builder of a request whose runs-on labels are
// exactly a job's labels (compared case-insensitively, as GitHub does).
// The fleet maps a queued job to its pool this way, never by matching
// label sets against the pools: a job asking for anything else is not one
// the request dispatched.
func BuilderOf(buildersInput string, jobLabels []string) (Builder, bool) {
	var bs []Builder
	if err := json.Unmarshal([]byte(buildersInput), &bs); err != nil {
		return Builder{}, false
	}
	for _, b := range bs {
		if sameLabels(b.Labels, jobLabels) {
			return b, true
		}
	}
	return Builder{}, false
}

func sameLabels(a, b []string) bool {
	if len(a) == 0 || len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			found = found || strings.EqualFold(x, y)
		}
		if !found {
			return false
		}
	}
	return true
}
