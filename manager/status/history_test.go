package status_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/manager/store"
	"github.com/buildfleet/buildfleet/manager/trigger"
)

// TestHistoryPages: the grid, a builder, a request's timeline, the queue,
// the hosts and the release status show the figures the store, the
// fleet's queue and the health tracker hold.
func TestHistoryPages(t *testing.T) {
	f := newRichFixture(t)
	tests := []struct {
		name, path string
		want       []string
		wantNot    []string
	}{
		{name: "grid", path: "/grid", want: []string{
			`<tr data-pool="ubuntu-quick">`,
			`<td class="cell result-running"><a href="https://github.example/python/cpython/actions/runs/777/job/9001" title="ubuntu-quick: running on donor-a">running</a></td>`,
			`<td class="cell result-failure"><a href="https://github.example/python/cpython/actions/runs/500/job/2ubuntu-quick"`,
			`<td class="cell result-success"><a href="https://github.example/python/cpython/actions/runs/500/job/1ubuntu-quick"`,
			`<td class="cell result-waiting"><a href="/requests/0123456789abcdef" title="macos-refleak: waiting">`,
			`<td class="cell result-error"><a href="https://github.example/python/cpython/actions/runs/500/job/2macos-refleak"`,
			`title="python/cpython #4242 a1b2c3d4e5f60718293a4b5c6d7e8f9012345678 by triager">#4242</a>`,
		}, wantNot: []string{
			f.evil.ID, // refused: never dispatched, no column
		}},
		{name: "grid of stable builders", path: "/grid?stable=stable", want: []string{`<tr data-pool="ubuntu-quick">`},
			wantNot: []string{`<tr data-pool="macos-refleak">`}},
		{name: "grid of the refleak tier", path: "/grid?tier=refleak", want: []string{`No requests dispatched yet.`},
			wantNot: []string{`<tr data-pool="ubuntu-quick">`, `#4242`}},
		{name: "builder", path: "/builders/ubuntu-quick", want: []string{
			`<dd id="passrate">50 % <small>(1 passed, 1 failed, 0 fleet errors in this page)</small></dd>`,
			`<dd id="median">24m52s</dd>`, // 19m51s and 29m52s
			`<td><span class="cell result-failure">failure</span></td>
<td>29m52s</td>
<td>donor-a</td>`,
			`<tr><td>donor-b</td><td><span class="health health-down">down</span></td>`,
			`<p class="empty" id="queue-empty">Nothing waits for a host.</p>`,
		}},
		{name: "builder with a queue", path: "/builders/macos-refleak", want: []string{
			`<td class="reason">no eligible host: 1 node ineligible</td>`,
			`<dd id="passrate">100 % <small>(1 passed, 0 failed, 1 fleet errors in this page)</small></dd>`,
		}},
		{name: "request timeline", path: "/requests/" + passedID, want: []string{
			`<tr data-pool="ubuntu-quick">
<td><a href="/builders/ubuntu-quick">ubuntu-quick</a></td>
<td><span class="cell result-success">success</span></td>
<td class="host">donor-a</td>
<td>09:00:02</td>
<td>09:00:05</td>
<td>09:00:05</td>
<td>09:00:09</td>
<td>09:20:00</td>
<td>3s</td>
<td>19m51s</td>`,
		}},
		{name: "request ended by wait_timeout", path: "/requests/" + failedID, want: []string{
			`<td><span class="cell result-error">error</span></td>`,
			`<td class="reason">no eligible host: 1 node ineligible</td>`,
		}},
		{name: "queue", path: "/queue", want: []string{
			`<td><a href="/builders/macos-refleak">macos-refleak</a></td>
<td><a href="/requests/0123456789abcdef">0123456789abcdef</a></td>
<td>9002</td>
<td>dispatched</td>
<td class="reason">no eligible host: 1 node ineligible</td>`,
		}},
		{name: "hosts", path: "/hosts", want: []string{
			`<td>Ann Donor<br><small><a href="mailto:ann@example.org">ann@example.org</a></small></td>`,
			`<td>Bob<br><small><a href="https://example.org/bob">https://example.org/bob</a></small></td>`,
			`<span class="health health-missing">missing</span><br><small>down</small>`,
			`<span class="health health-drained">drained</span></td>
<td>draining</td>`,
			`<span class="health health-disabled">disabled</span></td>
<td>disabled by buildfleet</td>`,
			`<td class="failures">3<br><small>2025-03-01 11:00:00Z not_taken: exit 1</small>`,
			`<small>2025-03-01 11:00:00Z ineligible by webhook: sent</small>`,
			`<small>2025-03-01 12:00:00Z missing by webhook: sent</small>`,
			`<td>1 / 4</td>`,
			`title="2025-03-01 11:00:00Z">1h ago</time>`, // donor-b's last heartbeat
		}},
		{name: "release status", path: "/summary", want: []string{
			`<h2>quick: <span class="verdict result-failure">1 stable builder(s) failing</span></h2>`,
			`Failing: <a href="/builders/ubuntu-quick">ubuntu-quick</a>`,
			`<a href="/hosts#host-donor-b">donor-b</a>, <a href="/hosts#host-donor-d">donor-d</a>`,
			`<h2>refleak: <span class="verdict result-none">no stable builders</span></h2>`,
		}},
		{name: "front page outcome", path: "/", want: []string{`<small class="outcome">failed</small>`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := f.get(t, tc.path)
			if code != 200 {
				t.Fatalf("GET %s = %d\n%s", tc.path, code, body)
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
	if n := f.hooks.n; n != 2 {
		t.Errorf("%d webhook notices, want 2 (donor-b missing, donor-d disabled)", n)
	}
}

func TestHistoryAPIs(t *testing.T) {
	f := newRichFixture(t)
	var grid struct {
		Columns []struct{ ID string } `json:"columns"`
		Rows    []struct {
			Pool  string `json:"pool"`
			Cells []struct {
				Result string `json:"result"`
			} `json:"cells"`
		} `json:"rows"`
	}
	getJSON(t, f, "/api/v1/grid", &grid)
	if len(grid.Columns) != 3 || grid.Columns[0].ID != f.good.ID || len(grid.Rows) != 2 ||
		grid.Rows[0].Cells[1].Result != "failure" || grid.Rows[1].Cells[1].Result != "error" {
		t.Errorf("grid %+v", grid)
	}
	var b struct {
		Stats struct {
			Passed   int    `json:"passed"`
			Failed   int    `json:"failed"`
			PassRate string `json:"pass_rate"`
		} `json:"stats"`
		Builds []struct {
			Result string `json:"result"`
			Host   string `json:"host"`
		} `json:"builds"`
	}
	getJSON(t, f, "/api/v1/builders/ubuntu-quick", &b)
	if b.Stats.Passed != 1 || b.Stats.Failed != 1 || b.Stats.PassRate != "50 %" || len(b.Builds) != 3 {
		t.Errorf("builder %+v", b)
	}
	var q struct {
		Queue []struct {
			Pool, Reason string
		} `json:"queue"`
	}
	getJSON(t, f, "/api/v1/queue", &q)
	if len(q.Queue) != 1 || q.Queue[0].Pool != "macos-refleak" {
		t.Errorf("queue %+v", q)
	}
	var h struct {
		Hosts []struct {
			Name     string `json:"name"`
			Health   string `json:"health"`
			Owner    string `json:"owner"`
			Failures []any  `json:"failures"`
			Notices  []struct {
				State string `json:"state"`
			} `json:"notices"`
		} `json:"hosts"`
	}
	getJSON(t, f, "/api/v1/hosts", &h)
	if len(h.Hosts) != 4 || h.Hosts[3].Health != "disabled" || len(h.Hosts[3].Failures) != 3 ||
		len(h.Hosts[3].Notices) != 1 || h.Hosts[3].Notices[0].State != "sent" || h.Hosts[0].Owner != "Ann Donor" {
		t.Errorf("hosts %+v", h)
	}
	code, _, body := f.get(t, "/api/v1/hosts")
	if code != 200 || strings.Contains(body, "127.0.0.1") {
		t.Errorf("hosts API %d shows the webhook URL:\n%s", code, body)
	}
	var r struct {
		Timeline []struct {
			Pool   string `json:"pool"`
			Host   string `json:"host"`
			Waited string `json:"waited"`
		} `json:"timeline"`
	}
	getJSON(t, f, "/api/v1/requests/"+passedID, &r)
	if len(r.Timeline) != 2 || r.Timeline[0].Host != "donor-a" || r.Timeline[0].Waited != "3s" {
		t.Errorf("timeline %+v", r.Timeline)
	}
	for _, p := range []string{"/builders/nosuch", "/api/v1/builders/nosuch"} {
		if code, _, _ := f.get(t, p); code != 404 {
			t.Errorf("GET %s = %d, want 404", p, code)
		}
	}
}

func getJSON(t *testing.T, f *richFixture, path string, v any) {
	t.Helper()
	code, h, body := f.get(t, path)
	if code != 200 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s = %d %s", path, code, body)
	}
	noSecrets(t, path, body)
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// TestHeldBuilderOnRequestPage: a builder that max_runners holds back has
// no runner yet; its request's timeline still shows it waiting, and why.
func TestHeldBuilderOnRequestPage(t *testing.T) {
	f := newRichFixture(t)
	ctx := context.Background()
	id := "3333333333333333"
	create(t, f.st, store.Request{ID: id, DeliveryID: "d-3", Repo: "python/cpython", PR: 300, SHA: strings.Repeat("d", 40),
		Tier: "refleak", Actor: "core-dev", State: trigger.StateAccepted, CreatedAt: t0})
	from, state, run, builders := trigger.StateAccepted, trigger.StateDispatched, int64(900), `[{"name":"macos-refleak","labels":["buildfleet-held"]}]`
	if err := f.st.UpdateRequest(ctx, id, store.RequestFields{From: &from, State: &state, RunID: &run, Builders: &builders}); err != nil {
		t.Fatal(err)
	}
	// macos-refleak (max_runners 1) is busy with the good request's runner.
	d := store.Delivery{ID: "q-900", Event: "workflow_job", ReceivedAt: time.Now(), Payload: []byte(
		`{"action":"queued","workflow_job":{"id":9900,"run_id":900,"name":"macos-refleak","labels":["buildfleet-held"],` +
			`"html_url":"https://github.example/python/cpython/actions/runs/900/job/9900"},"repository":{"full_name":"python/cpython"}}`)}
	if err := f.fleet.HandleJob(ctx, d); err == nil {
		t.Fatal("a job of a full pool was started")
	}
	_, _, body := f.get(t, "/requests/"+id)
	for _, want := range []string{
		`<tr data-pool="macos-refleak">`,
		`<td><span class="cell result-waiting">waiting</span></td>`,
		`<td class="reason">macos-refleak is full (1 of 1 runners busy)</td>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("request page lacks %q\n%s", want, body)
		}
	}
}
