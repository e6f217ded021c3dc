package status_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/fleet"
	"github.com/buildfleet/buildfleet/manager/status"
	"github.com/buildfleet/buildfleet/manager/store"
	"github.com/buildfleet/buildfleet/manager/trigger"
)

// Secret values in the test config and store: none may appear on a page.
const (
	ghToken     = "ghp_SECRETTOKEN0123456789"
	hookSecret  = "whsec-SECRETHOOK"
	nomadToken  = "nomad-SECRET-token"
	payloadMark = "PAYLOAD-SECRET-MARK"
)

const hostile = `<script>alert(1)</script>`

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	st   *store.Store
	cfg  config.Config
	srv  *httptest.Server
	good store.Request // dispatched, with builders and runners
	evil store.Request // hostile label, login and reason
}

func testConfig() config.Config {
	c := config.Default()
	c.GitHub.WebURL = "https://github.example/"
	c.GitHub.Token = ghToken
	c.GitHub.WebhookSecret = hookSecret
	c.Nomad.Token = nomadToken
	c.Repositories = []config.Repository{{Name: "python/cpython"}}
	c.Pools = []config.Pool{
		{Name: "ubuntu-quick", Platform: "linux-x86_64", Tier: "quick", Labels: []string{"self-hosted", "linux"}, Stable: true, MaxRunners: 3},
		{Name: "macos-refleak", Platform: "macos-arm64", Tier: "refleak", Labels: []string{"self-hosted", "macos"}, MaxRunners: 1},
	}
	c.ApplyDefaults()
	return c
}

// newFixture opens a real store in a temp dir, fills it through the store
// API and serves the status pages over httptest.
func newFixture(t *testing.T, fl status.Fleet) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "buildfleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st, cfg: testConfig()}

	if _, err := st.PutDelivery(ctx, store.Delivery{ID: "d-1", Event: "pull_request", ReceivedAt: t0,
		Payload: []byte(`{"secret":"` + payloadMark + `"}`)}); err != nil {
		t.Fatal(err)
	}
	f.good = create(t, st, store.Request{
		ID: "0123456789abcdef", DeliveryID: "d-1", Repo: "python/cpython", PR: 4242,
		SHA: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", Tier: "quick", Label: "🔨 test-with-buildbots",
		Actor: "triager", Role: "triage", State: trigger.StateAccepted, CreatedAt: t0.Add(-90 * time.Second),
	})
	from := trigger.StateAccepted
	state, builders, runID, runURL, commentID := trigger.StateDispatched,
		`[{"name":"ubuntu-quick","labels":["self-hosted","linux"]},{"name":"macos-refleak","labels":["self-hosted","macos"]}]`,
		int64(777), "https://github.example/python/cpython/actions/runs/777", int64(31337)
	if err := st.UpdateRequest(ctx, f.good.ID, store.RequestFields{From: &from, State: &state, Builders: &builders,
		RunID: &runID, RunURL: &runURL, CommentID: &commentID}); err != nil {
		t.Fatal(err)
	}
	f.evil = create(t, st, store.Request{
		ID: "fedcba9876543210", DeliveryID: "d-2", Repo: "python/cpython", PR: 7,
		SHA: "ffffffffffffffffffffffffffffffffffffffff", Tier: "quick", Label: "label" + hostile,
		Actor: "mallory" + hostile, Role: "read", State: trigger.StateRefused,
		Reason: "role read < triage " + hostile, CreatedAt: t0.Add(-30 * time.Second),
	})
	for _, r := range []store.Runner{
		{GitHubJobID: 9001, Attempt: 1, RunID: 777, RequestID: f.good.ID, Repo: "python/cpython", Pool: "ubuntu-quick",
			RunnerName: "bf-ubuntu-quick-9001-1", State: fleet.StateFailed},
		{GitHubJobID: 9001, Attempt: 2, RunID: 777, RequestID: f.good.ID, Repo: "python/cpython", Pool: "ubuntu-quick",
			RunnerName: "bf-ubuntu-quick-9001-2", NomadJobID: "runner-ubuntu-quick/dispatch-1",
			HTMLURL: "https://github.example/python/cpython/actions/runs/777/job/9001", State: fleet.StateRunning},
		{GitHubJobID: 9002, Attempt: 1, RunID: 777, RequestID: f.good.ID, Repo: "python/cpython", Pool: "macos-refleak",
			RunnerName: "bf-macos-refleak-9002-1", State: fleet.StateDispatched},
	} {
		if _, err := st.CreateRunner(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	h := status.New(status.Options{Store: st, Config: f.cfg, Fleet: fl,
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return t0 }})
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func create(t *testing.T, st *store.Store, r store.Request) store.Request {
	t.Helper()
	got, _, err := st.CreateRequest(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (f *fixture) get(t *testing.T, path string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// noSecrets fails when a secret of the config or the store is in body.
func noSecrets(t *testing.T, path, body string) {
	t.Helper()
	for _, s := range []string{ghToken, hookSecret, nomadToken, payloadMark} {
		if strings.Contains(body, s) {
			t.Errorf("%s shows the secret %q", path, s)
		}
	}
}

func TestPages(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name, path string
		want       []string
		wantNot    []string
	}{
		{name: "index", path: "/", want: []string{
			`<meta http-equiv="refresh" content="10">`,
			`href="/requests/0123456789abcdef"`,
			`href="https://github.example/python/cpython/pull/4242">#4242</a>`,
			`<code title="a1b2c3d4e5f60718293a4b5c6d7e8f9012345678">a1b2c3d4e5</code>`,
			`>dispatched</span>`, `>refused</span>`, `>triager<`, `>1m<`, `>30s<`,
			// pools with runner counts: ubuntu-quick 0 pending 1 running, macos 1 pending
			`<td><a href="/builders/ubuntu-quick">ubuntu-quick</a></td><td>linux-x86_64</td><td>quick</td><td>yes</td><td>3</td><td>actions runner</td><td>0</td><td>1</td>`,
			`<td><a href="/builders/macos-refleak">macos-refleak</a></td><td>macos-arm64</td><td>refleak</td><td>no</td><td>1</td><td>actions runner</td><td>1</td><td>0</td>`,
			`/static/style.css`,
		}},
		{name: "request", path: "/requests/0123456789abcdef", want: []string{
			`<code id="sha">a1b2c3d4e5f60718293a4b5c6d7e8f9012345678</code>`,
			`<span id="state" class="state state-dispatched">dispatched</span>`,
			`href="https://github.example/python/cpython/actions/runs/777">run 777</a>`,
			`href="https://github.example/python/cpython/pull/4242#issuecomment-31337">on the PR</a>`,
			`🔨 test-with-buildbots`, `triager (triage)`,
			// builder with its latest runner attempt, and every attempt below
			`<td>bf-ubuntu-quick-9001-2 (attempt 2)</td><td>running</td>`,
			`href="https://github.example/python/cpython/actions/runs/777/job/9001">log</a>`,
			`<td>bf-macos-refleak-9002-1</td><td>dispatched</td>`,
			`bf-ubuntu-quick-9001-1`, `runner-ubuntu-quick/dispatch-1`,
		}, wantNot: []string{"d-1"}},
		{name: "pools without fleet", path: "/pools", want: []string{
			`<section class="pool" id="pool-ubuntu-quick">`, `Hosts: not available.`,
			`<code>self-hosted</code>, <code>linux</code>`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := f.get(t, tc.path)
			if code != 200 {
				t.Fatalf("GET %s = %d\n%s", tc.path, code, body)
			}
			if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
				t.Errorf("no restrictive CSP: %q", h.Get("Content-Security-Policy"))
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s lacks %q\n%s", tc.path, w, body)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(body, w) {
					t.Errorf("GET %s shows %q", tc.path, w)
				}
			}
			noSecrets(t, tc.path, body)
		})
	}
}

func TestNewestFirst(t *testing.T) {
	f := newFixture(t, nil)
	_, _, body := f.get(t, "/")
	evil, good := strings.Index(body, f.evil.ID), strings.Index(body, f.good.ID)
	if evil < 0 || good < 0 || evil > good {
		t.Errorf("requests not newest first: %s at %d, %s at %d", f.evil.ID, evil, f.good.ID, good)
	}
}

// GitHub controls labels, logins and reasons: they must come out as text.
func TestHostileValuesAreEscaped(t *testing.T) {
	f := newFixture(t, nil)
	for _, path := range []string{"/", "/requests/" + f.evil.ID} {
		_, _, body := f.get(t, path)
		if strings.Contains(body, "<script") {
			t.Errorf("%s contains a raw <script>:\n%s", path, body)
		}
		if !strings.Contains(body, "mallory&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s lacks the escaped login", path)
		}
	}
	_, _, body := f.get(t, "/requests/"+f.evil.ID)
	for _, w := range []string{"label&lt;script&gt;", "role read &lt; triage &lt;script&gt;", "not dispatched"} {
		if !strings.Contains(body, w) {
			t.Errorf("request page lacks %q", w)
		}
	}
}

// A URL stored from a payload cannot become a javascript: link.
func TestUnsafeURLsAreNeutralised(t *testing.T) {
	f := newFixture(t, nil)
	u := "javascript:alert(1)"
	if err := f.st.UpdateRequest(context.Background(), f.good.ID, store.RequestFields{RunURL: &u}); err != nil {
		t.Fatal(err)
	}
	_, _, body := f.get(t, "/requests/"+f.good.ID)
	if strings.Contains(body, `href="javascript:`) {
		t.Errorf("javascript: URL rendered as a link:\n%s", body)
	}
}

func TestNotFound(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct{ name, id string }{
		{"unknown", "00000000deadbeef"},
		{"too short", "0123"},
		{"upper case", "0123456789ABCDEF"},
		{"not hex", "0123456789abcdeg"},
		{"too long", "0123456789abcdef0"},
		{"sql", "x'%20OR%201=1--"},
		{"markup", "%3Cscript%3E"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := f.get(t, "/requests/"+tc.id)
			if code != http.StatusNotFound || !strings.Contains(body, "<h1>Not found</h1>") {
				t.Errorf("page: %d %s", code, body)
			}
			if strings.Contains(body, "<script") {
				t.Errorf("404 page reflects markup: %s", body)
			}
			if !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
				t.Errorf("page Content-Type %q", h.Get("Content-Type"))
			}
			code, h, body = f.get(t, "/api/v1/requests/"+tc.id)
			if code != http.StatusNotFound || h.Get("Content-Type") != "application/json" ||
				strings.TrimSpace(body) != "{\n  \"error\": \"not found\"\n}" {
				t.Errorf("api: %d %q %s", code, h.Get("Content-Type"), body)
			}
		})
	}
}

func TestAPIRequests(t *testing.T) {
	f := newFixture(t, nil)
	code, h, body := f.get(t, "/api/v1/requests")
	if code != 200 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", code, h.Get("Content-Type"))
	}
	noSecrets(t, "/api/v1/requests", body)
	var got struct {
		Requests []map[string]any `json:"requests"`
		Pools    []map[string]any `json:"pools"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Requests) != 2 || got.Requests[0]["id"] != f.evil.ID || got.Requests[1]["id"] != f.good.ID {
		t.Fatalf("requests = %v", got.Requests)
	}
	g := got.Requests[1]
	for k, want := range map[string]any{
		"repo": "python/cpython", "pr": 4242.0, "pr_url": "https://github.example/python/cpython/pull/4242",
		"sha": f.good.SHA, "tier": "quick", "actor": "triager", "state": "dispatched", "run_id": 777.0,
		"created_at": "2025-03-01T11:58:30Z",
	} {
		if g[k] != want {
			t.Errorf("requests[1].%s = %v, want %v", k, g[k], want)
		}
	}
	if _, ok := g["delivery_id"]; ok {
		t.Error("delivery_id is exposed")
	}
	if got.Requests[0]["actor"] != "mallory"+hostile {
		t.Errorf("JSON must carry the raw value, got %v", got.Requests[0]["actor"])
	}
	if len(got.Pools) != 2 || got.Pools[0]["name"] != "ubuntu-quick" || got.Pools[0]["running"] != 1.0 ||
		got.Pools[1]["pending"] != 1.0 || got.Pools[0]["hosts_available"] != false {
		t.Errorf("pools = %v", got.Pools)
	}
}

func TestAPIRequest(t *testing.T) {
	f := newFixture(t, nil)
	code, _, body := f.get(t, "/api/v1/requests/"+f.good.ID)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	noSecrets(t, "/api/v1/requests/{id}", body)
	var got struct {
		ID       string `json:"id"`
		SHA      string `json:"sha"`
		State    string `json:"state"`
		RunURL   string `json:"run_url"`
		Builders []struct {
			Name   string   `json:"name"`
			Labels []string `json:"labels"`
		} `json:"builders"`
		Runners []struct {
			Pool       string `json:"pool"`
			JobID      int64  `json:"job_id"`
			Attempt    int    `json:"attempt"`
			RunnerName string `json:"runner_name"`
			State      string `json:"state"`
			JobURL     string `json:"job_url"`
		} `json:"runners"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != f.good.ID || got.SHA != f.good.SHA || got.State != "dispatched" ||
		got.RunURL != "https://github.example/python/cpython/actions/runs/777" {
		t.Errorf("request = %+v", got)
	}
	if len(got.Builders) != 2 || got.Builders[0].Name != "ubuntu-quick" || len(got.Builders[0].Labels) != 2 {
		t.Errorf("builders = %+v", got.Builders)
	}
	if len(got.Runners) != 3 || got.Runners[1].Attempt != 2 || got.Runners[1].State != "running" ||
		got.Runners[1].JobID != 9001 || got.Runners[1].JobURL == "" {
		t.Errorf("runners = %+v", got.Runners)
	}
}

// fakeFleet is a Fleet with fixed hosts per pool.
type fakeFleet map[string][]status.Host

func (f fakeFleet) Hosts(_ context.Context, p config.Pool) ([]status.Host, error) {
	if p.Name == "macos-refleak" {
		return nil, io.ErrUnexpectedEOF
	}
	return f[p.Name], nil
}

func TestPoolsWithFleet(t *testing.T) {
	f := newFixture(t, fakeFleet{"ubuntu-quick": {
		{Name: "donor-box" + hostile, Datacenter: "dc1", Status: "ready", Eligible: true, Running: 1, Slots: 2, Isolation: "user", Placeable: true},
		{Name: "paused-box", Datacenter: "dc1", Status: "ready", Eligible: false, Isolation: "container", Why: "paused (ineligible)"},
		{Name: "gone-box", Datacenter: "dc2", Status: "down", Eligible: true, Draining: true, Why: "status down"},
	}})
	code, _, body := f.get(t, "/pools")
	if code != 200 {
		t.Fatal(code)
	}
	for _, w := range []string{
		`<td>donor-box&lt;script&gt;alert(1)&lt;/script&gt;</td><td>dc1</td><td><span class="health health-ready">ready</span></td>`,
		`<td>eligible</td>`, `<td>1 / 2</td>`, `<td>paused</td>`, `<td>draining</td>`, `health-down`,
		`hosts could not be listed`, `<td>user</td>`, `<td>container</td>`, `<td>undeclared</td>`, `<td>yes</td>`,
		`<td>no: paused (ineligible)</td>`, `<td>no: status down</td>`,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("/pools lacks %q\n%s", w, body)
		}
	}
	if strings.Contains(body, io.ErrUnexpectedEOF.Error()) {
		t.Error("/pools shows an internal error")
	}
	_, _, body = f.get(t, "/api/v1/pools")
	var got struct {
		Pools []struct {
			Name           string        `json:"name"`
			HostsAvailable bool          `json:"hosts_available"`
			Hosts          []status.Host `json:"hosts"`
		} `json:"pools"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Pools) != 2 || !got.Pools[0].HostsAvailable || len(got.Pools[0].Hosts) != 3 ||
		got.Pools[0].Hosts[0].Slots != 2 || got.Pools[0].Hosts[0].Isolation != "user" {
		t.Errorf("api pools = %+v", got.Pools)
	}

	// A pool whose only host cannot take its runner has no host available.
	f = newFixture(t, fakeFleet{"ubuntu-quick": {
		{Name: "wrong-pool", Datacenter: "dc1", Status: "ready", Eligible: true, Why: "in node pool default, the pool's runners go to buildfleet-linux-x86_64"},
	}})
	_, _, body = f.get(t, "/api/v1/pools")
	got.Pools = nil
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Pools[0].HostsAvailable || len(got.Pools[0].Hosts) != 1 || got.Pools[0].Hosts[0].Why == "" {
		t.Errorf("pool with an unplaceable host: %+v", got.Pools[0])
	}
}

// A store without the fleet's runners still serves every page.
func TestStoreWithoutRunners(t *testing.T) {
	f := newFixture(t, nil)
	h := status.New(status.Options{Store: requestsOnly{f.st}, Config: f.cfg, Now: func() time.Time { return t0 }})
	for _, path := range []string{"/", "/requests/" + f.good.ID, "/pools", "/api/v1/requests/" + f.good.ID} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 {
			t.Errorf("GET %s = %d", path, rec.Code)
		}
		if strings.Contains(rec.Body.String(), "bf-ubuntu-quick") {
			t.Errorf("GET %s shows runners of a store without them", path)
		}
	}
}

type requestsOnly struct{ st *store.Store }

func (r requestsOnly) ListRequests(ctx context.Context, n int) ([]store.Request, error) {
	return r.st.ListRequests(ctx, n)
}
func (r requestsOnly) Request(ctx context.Context, id string) (store.Request, error) {
	return r.st.Request(ctx, id)
}

// A failing store gives a 500 that tells nothing about the failure.
func TestStoreErrorHidden(t *testing.T) {
	f := newFixture(t, nil)
	f.st.Close()
	for _, path := range []string{"/", "/requests/" + f.good.ID, "/api/v1/requests"} {
		code, _, body := f.get(t, path)
		if code != http.StatusInternalServerError || strings.Contains(body, "closed") || strings.Contains(body, "sql") {
			t.Errorf("GET %s = %d %s", path, code, body)
		}
	}
}

func TestStaticCSS(t *testing.T) {
	f := newFixture(t, nil)
	code, h, body := f.get(t, "/static/style.css")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/css") || !strings.Contains(body, "table") {
		t.Errorf("%d %q", code, h.Get("Content-Type"))
	}
}
