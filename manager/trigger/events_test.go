package trigger

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/testenv"
	"github.com/buildfleet/buildfleet/manager/store"
)

// TestParsesGitHubsPublishedExamples parses every pull_request example of
// @octokit/webhooks-examples: none may fail, and labeled ones must yield
// what the trigger uses.
func TestParsesGitHubsPublishedExamples(t *testing.T) {
	dir := testenv.NPMPackage(t, "@octokit/webhooks-examples")
	b, err := os.ReadFile(filepath.Join(dir, "api.github.com", "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index []struct {
		Name     string            `json:"name"`
		Examples []json.RawMessage `json:"examples"`
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	var parsed, labeled int
	for _, ev := range index {
		if ev.Name != "pull_request" {
			continue
		}
		for i, ex := range ev.Examples {
			e, err := parsePullRequest(ex)
			if err != nil {
				t.Errorf("example %d: %v", i, err)
				continue
			}
			parsed++
			if e.Action == "labeled" {
				labeled++
				if e.Label.Name == "" || e.Repository.FullName == "" || e.Sender.Login == "" || len(e.PullRequest.Head.SHA) != 40 {
					t.Errorf("labeled example %d parsed incompletely: %+v", i, e)
				}
			}
		}
	}
	if parsed < 20 || labeled == 0 {
		t.Errorf("parsed %d pull_request examples (%d labeled); the fixture looks wrong", parsed, labeled)
	}
}

func TestParseRejectsBadInput(t *testing.T) {
	good := `{"action":"labeled","label":{"name":"x"},"pull_request":{"number":1,"state":"open","head":{"sha":"0123456789012345678901234567890123456789"}},"repository":{"full_name":"o/r"},"sender":{"login":"u"}}`
	if _, err := parsePullRequest([]byte(good)); err != nil {
		t.Fatalf("good payload: %v", err)
	}
	for name, payload := range map[string]string{
		"not json":     `{`,
		"wrong type":   `{"action":"labeled","pull_request":{"number":"one"}}`,
		"no label":     `{"action":"labeled","pull_request":{"number":1,"head":{"sha":"0123456789012345678901234567890123456789"}},"repository":{"full_name":"o/r"},"sender":{"login":"u"}}`,
		"short sha":    `{"action":"labeled","label":{"name":"x"},"pull_request":{"number":1,"head":{"sha":"abc"}},"repository":{"full_name":"o/r"},"sender":{"login":"u"}}`,
		"no sender":    `{"action":"labeled","label":{"name":"x"},"pull_request":{"number":1,"head":{"sha":"0123456789012345678901234567890123456789"}},"repository":{"full_name":"o/r"}}`,
		"bad sender":   `{"action":"labeled","label":{"name":"x"},"pull_request":{"number":1,"head":{"sha":"0123456789012345678901234567890123456789"}},"repository":{"full_name":"o/r"},"sender":{"login":"a b"}}`,
		"no pr number": `{"action":"labeled","label":{"name":"x"},"pull_request":{"head":{"sha":"0123456789012345678901234567890123456789"}},"repository":{"full_name":"o/r"},"sender":{"login":"u"}}`,
	} {
		if _, err := parsePullRequest([]byte(payload)); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

// FuzzHandleDelivery: arbitrary payloads never panic and never create a
// request unless they are a well-formed label event of a configured
// repository (here none matches, so no GitHub call can happen: GitHub is
// nil and would panic if called).
func FuzzHandleDelivery(f *testing.F) {
	f.Add([]byte(`{"action":"labeled","label":{"name":"🔨 test-with-buildbots"},"pull_request":{"number":1,"state":"open","head":{"sha":"0123456789012345678901234567890123456789"}},"repository":{"full_name":"other/repo"},"sender":{"login":"u"}}`))
	f.Add([]byte(`{"action":"opened"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"action":"labeled","label":null}`))
	st, err := store.Open(context.Background(), filepath.Join(f.TempDir(), "f.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	cfg := config.Default()
	cfg.Repositories = []config.Repository{{Name: "python/cpython"}}
	cfg.ApplyDefaults()
	tr := New(Options{Config: cfg, Store: st})
	f.Fuzz(func(t *testing.T, payload []byte) {
		var probe struct {
			Repository struct {
				FullName string `json:"full_name"`
			} `json:"repository"`
		}
		if json.Unmarshal(payload, &probe) == nil && tr.cfg.Repository(probe.Repository.FullName) != nil {
			t.Skip("payload names the configured repository")
		}
		_ = tr.HandleDelivery(context.Background(), store.Delivery{ID: "fuzz", Event: "pull_request", ReceivedAt: time.Now(), Payload: payload})
		reqs, err := st.ListRequests(context.Background(), 1)
		if err != nil || len(reqs) != 0 {
			t.Fatalf("a request was created for an unconfigured repository: %v %v", reqs, err)
		}
	})
}
