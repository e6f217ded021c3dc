package ghsim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"

	"github.com/buildfleet/buildfleet/internal/testenv"
)

type exampleEvent struct {
	Name     string           `json:"name"`
	Examples []map[string]any `json:"examples"`
}

func loadExamples(t *testing.T) []exampleEvent {
	t.Helper()
	dir := testenv.NPMPackage(t, "@octokit/webhooks-examples")
	b, err := os.ReadFile(filepath.Join(dir, "api.github.com", "index.json"))
	must(t, err)
	var evs []exampleEvent
	must(t, json.Unmarshal(b, &evs))
	return evs
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	}
	return "object"
}

// shape maps each field path ("a.b[].c") to the JSON types seen there.
type shape map[string]map[string]bool

func (sh shape) add(path string, v any) {
	if sh[path] == nil {
		sh[path] = map[string]bool{}
	}
	sh[path][jsonType(v)] = true
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			sh.add(join(path, k), e)
		}
	case []any:
		for _, e := range v {
			sh.add(path+"[]", e)
		}
	}
}

func join(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}

// compareShape reports the fields of want (examples of one event/action)
// that got (ghsim's payloads) lacks or types differently. A field is
// nullable when any published example of the event, whatever the action,
// has null there; under a null or an empty array in got there is nothing
// to compare.
func compareShape(want, got, nullable shape) []string {
	var problems []string
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	covered := func(p string) bool {
		for q := p; q != ""; {
			i := strings.LastIndexAny(q, ".[")
			if i < 0 {
				return false
			}
			q = q[:i]
			if gt := got[q]; gt != nil {
				if gt["null"] && len(gt) == 1 && nullable[q]["null"] {
					return true
				}
				if gt["array"] && got[q+"[]"] == nil {
					return true
				}
			}
		}
		return false
	}
	for _, p := range paths {
		if contextual(p) {
			continue
		}
		wt := want[p]
		if len(wt) == 1 && wt["null"] {
			continue // null in the example matches anything
		}
		gt := got[p]
		if gt == nil {
			if !covered(p) {
				problems = append(problems, "missing "+p)
			}
			continue
		}
		for typ := range gt {
			if !wt[typ] && !(typ == "null" && nullable[p]["null"]) && !wt["null"] {
				problems = append(problems, "type of "+p+": "+typ+", want "+strings.Join(keys(wt), "|"))
			}
		}
	}
	return problems
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestWebhookPayloadsMatchExamples checks that for each event and action
// ghsim emits, its payloads carry every field of GitHub's published
// examples with the same JSON type.
func TestWebhookPayloadsMatchExamples(t *testing.T) {
	evs := loadExamples(t)
	s, c := newTestServer(t, Options{InstallationID: 4242})
	sink := newHookSink(t)
	scenario(t, s, c, sink)

	examples := map[string]shape{} // "event.action"
	nullable := map[string]shape{} // "event"
	for _, ev := range evs {
		nullable[ev.Name] = shape{}
		for _, ex := range ev.Examples {
			a, _ := ex["action"].(string)
			k := ev.Name + "." + a
			if examples[k] == nil {
				examples[k] = shape{}
			}
			examples[k].add("", ex)
			nullable[ev.Name].add("", ex)
		}
	}
	got := map[string]shape{}
	for _, r := range sink.all() {
		k := r.Event + "." + r.action()
		if got[k] == nil {
			got[k] = shape{}
		}
		got[k].add("", r.Payload)
	}
	want := []string{
		"ping.", "pull_request.opened", "pull_request.labeled", "pull_request.unlabeled",
		"pull_request.synchronize", "pull_request.closed", "workflow_run.requested",
		"workflow_run.in_progress", "workflow_run.completed", "workflow_job.queued",
		"workflow_job.in_progress", "workflow_job.completed", "check_run.created", "check_run.completed",
	}
	for _, k := range want {
		t.Run(k, func(t *testing.T) {
			if got[k] == nil {
				t.Fatalf("ghsim emitted no %s", k)
			}
			ex := examples[k]
			if ex == nil {
				// Some actions have no published example (workflow_run.in_progress):
				// compare with every example of the event instead.
				ev, _, _ := strings.Cut(k, ".")
				ex = nullable[ev]
				t.Logf("no example for %s; comparing with all %s examples", k, ev)
			}
			ev, _, _ := strings.Cut(k, ".")
			for _, p := range compareShape(ex, got[k], nullable[ev]) {
				t.Error(p)
			}
		})
	}
}

// TestExamplesParse checks that go-github parses every published example of
// the events buildfleet consumes.
func TestExamplesParse(t *testing.T) {
	for _, ev := range loadExamples(t) {
		switch ev.Name {
		case "ping", "pull_request", "workflow_run", "workflow_job", "check_run":
		default:
			continue
		}
		for i, ex := range ev.Examples {
			b, _ := json.Marshal(ex)
			_, err := github.ParseWebHook(ev.Name, b)
			switch {
			case err == nil:
			case ev.Name == "check_run":
				// buildfleet writes check runs but does not consume their
				// webhooks; go-github v60 rejects the "2018-04-25 20:42:10"
				// timestamps of two published examples.
				t.Logf("known: go-github v60 cannot parse %s example %d: %v", ev.Name, i, err)
			default:
				t.Errorf("%s example %d: %v", ev.Name, i, err)
			}
		}
	}
}

// contextual tells fields GitHub sends only in a context ghsim never
// creates: check runs and workflow runs triggered by a deployment.
func contextual(p string) bool {
	for _, pre := range []string{"deployment", "check_run.deployment", "check_run.check_suite.deployment"} {
		if p == pre || strings.HasPrefix(p, pre+".") {
			return true
		}
	}
	return false
}
