package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/internal/ghsim"
	"github.com/buildfleet/buildfleet/manager/store"
	"github.com/buildfleet/buildfleet/manager/webhook"
)

func TestLabelByTriagerDispatchesOnceAtLabelledSHA(t *testing.T) {
	h := newHarness(t)
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	// A push right after the label must not change what is built.
	newSHA := strings.Repeat("cd", 20)
	if err := h.gh.PushPR(e2eRepo, h.pr, newSHA); err != nil {
		t.Fatal(err)
	}
	eventually(t, "one run", func() bool { return len(h.runs()) == 1 })
	run := h.runs()[0]
	inputs, _ := run["inputs"].(map[string]any)
	if inputs["sha"] != h.sha {
		t.Errorf("dispatched sha %v, want the labelled %s (not the later push %s)", inputs["sha"], h.sha, newSHA)
	}
	if inputs["tier"] != "quick" || inputs["pr"] != strconv.Itoa(h.pr) || inputs["request_id"] == "" {
		t.Errorf("inputs = %v", inputs)
	}
	var builders []map[string]any
	if err := json.Unmarshal([]byte(inputs["builders"].(string)), &builders); err != nil || len(builders) != 2 {
		t.Errorf("builders input %v (%v); want the 2 stable quick pools", inputs["builders"], err)
	}
	if got := h.labels(); len(got) != 0 {
		t.Errorf("labels after the request: %v, want none", got)
	}
	eventually(t, "one comment", func() bool { return len(h.comments()) == 1 })
	body := h.comments()[0]["body"].(string)
	for _, want := range []string{"@triager", h.sha, "quick", "http://buildfleet.test/requests/", quick} {
		if !strings.Contains(body, want) {
			t.Errorf("comment lacks %q:\n%s", want, body)
		}
	}
	if n := h.calls("POST", "/dispatches"); n != 1 {
		t.Errorf("%d dispatches, want 1", n)
	}
	// Calls per request: role, remove label, comment, dispatch.
	if n := len(h.managerCalls()); n > 4 {
		for _, c := range h.managerCalls() {
			t.Logf("%s %s %d", c.Method, c.Path, c.Status)
		}
		t.Errorf("%d GitHub calls for one request, want at most 4", n)
	}
	// ghsim records the dispatch before the manager has stored its answer.
	eventually(t, "request stored as dispatched", func() bool {
		reqs, _ := h.m.store.ListRequests(context.Background(), 10)
		return len(reqs) == 1 && reqs[0].State == "dispatched"
	})
	reqs, _ := h.m.store.ListRequests(context.Background(), 10)
	if len(reqs) != 1 || reqs[0].State != "dispatched" || reqs[0].RunID == 0 || reqs[0].Actor != "triager" {
		t.Errorf("stored requests = %+v", reqs)
	}
}

func TestLabelByReaderIsRefused(t *testing.T) {
	h := newHarness(t)
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "reader"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "refusal comment", func() bool { return len(h.comments()) == 1 })
	body := h.comments()[0]["body"].(string)
	if !strings.Contains(body, "@reader") || !strings.Contains(body, "triage") || !strings.Contains(body, "nothing was built") {
		t.Errorf("refusal comment:\n%s", body)
	}
	if got := h.labels(); len(got) != 0 {
		t.Errorf("labels after a refusal: %v, want none", got)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(h.runs()); n != 0 {
		t.Errorf("%d runs after a refusal, want 0", n)
	}
}

func TestOtherLabelsAndReposIgnored(t *testing.T) {
	h := newHarness(t)
	if err := h.gh.LabelPR(e2eRepo, h.pr, "type-bug", "core"); err != nil {
		t.Fatal(err)
	}
	// Almost the trigger label: names must match exactly.
	if err := h.gh.LabelPR(e2eRepo, h.pr, strings.TrimPrefix(quick, "🔨 "), "core"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deliveries handled", func() bool {
		un, _ := h.m.store.Unprocessed(context.Background(), 10)
		return len(h.gh.Deliveries()) >= 2 && len(un) == 0
	})
	if len(h.labels()) != 2 || len(h.runs()) != 0 || len(h.comments()) != 0 {
		t.Errorf("labels %v, %d runs, %d comments; want both labels kept and nothing done", h.labels(), len(h.runs()), len(h.comments()))
	}
}

func TestForgedAndSHA1WebhooksChangeNothing(t *testing.T) {
	h := newHarness(t)
	body := []byte(`{"action":"labeled","number":1,"label":{"name":"` + quick + `"},"pull_request":{"number":1,"state":"open","head":{"sha":"` + h.sha + `"}},"repository":{"full_name":"python/cpython"},"sender":{"login":"core"}}`)
	for name, set := range map[string]func(*http.Request){
		"forged": func(r *http.Request) { r.Header.Set("X-Hub-Signature-256", webhook.Sign([]byte("guess"), body)) },
		"sha1": func(r *http.Request) {
			r.Header.Set("X-Hub-Signature", "sha1=0123456789abcdef0123456789abcdef01234567")
		},
		"none": func(*http.Request) {},
	} {
		req, _ := http.NewRequest("POST", "http://"+h.m.Addr().String()+"/webhook", strings.NewReader(string(body)))
		req.Header.Set("X-GitHub-Event", "pull_request")
		req.Header.Set("X-GitHub-Delivery", "forged-"+name)
		set(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("%s: status %d, want 401", name, resp.StatusCode)
		}
	}
	if _, err := h.m.store.Delivery(context.Background(), "forged-forged"); err != store.ErrNotFound {
		t.Errorf("forged delivery left a trace: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	if len(h.managerCalls()) != 0 || len(h.runs()) != 0 {
		t.Errorf("forged webhooks caused %d GitHub calls, %d runs", len(h.managerCalls()), len(h.runs()))
	}
}

func TestDuplicateDeliveryDispatchesOnce(t *testing.T) {
	h := newHarness(t)
	if err := h.gh.AddFault(ghsim.Fault{Kind: ghsim.FaultDuplicate, Event: "pull_request", Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "core"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both deliveries answered", func() bool {
		n := 0
		for _, d := range h.gh.Deliveries() {
			if d.Event == "pull_request" && d.Action == "labeled" && d.StatusCode != 0 {
				n++
			}
		}
		return n >= 2
	})
	eventually(t, "one run", func() bool { return len(h.runs()) == 1 })
	time.Sleep(300 * time.Millisecond)
	if n := h.calls("POST", "/dispatches"); n != 1 {
		t.Errorf("%d dispatches for a duplicated delivery, want 1", n)
	}
	if n := len(h.comments()); n != 1 {
		t.Errorf("%d comments, want 1", n)
	}
}

func TestRateLimitedDispatchWaitsAndSucceeds(t *testing.T) {
	h := newHarness(t)
	if err := h.gh.AddFault(ghsim.Fault{Kind: ghsim.FaultTooMany, Path: "/dispatches$", Count: 1, RetryAfter: 1}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "core"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "one run after the 429", func() bool { return len(h.runs()) == 1 })
	var limited, ok int
	var limitedAt, okAt time.Time
	for _, c := range h.gh.Calls() {
		if c.Method == "POST" && strings.HasSuffix(c.Path, "/dispatches") {
			if c.Status == 429 {
				limited++
				limitedAt = c.Time
			} else if c.Status < 300 {
				ok++
				okAt = c.Time
			}
		}
	}
	if limited != 1 || ok != 1 {
		t.Fatalf("dispatch calls: %d answered 429, %d succeeded; want 1 and 1", limited, ok)
	}
	if okAt.Sub(limitedAt) < 900*time.Millisecond {
		t.Errorf("retried %v after a 429 with Retry-After: 1; want ≥ 1s", okAt.Sub(limitedAt))
	}
	_ = start
}

func TestSupersedeQueuedRun(t *testing.T) {
	h := newHarness(t)
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "core"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first run", func() bool { return len(h.runs()) == 1 })
	newSHA := strings.Repeat("ef", 20)
	if err := h.gh.PushPR(e2eRepo, h.pr, newSHA); err != nil {
		t.Fatal(err)
	}
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "second run", func() bool { return len(h.runs()) == 2 })
	eventually(t, "first run cancelled", func() bool {
		r := h.runs()[0]
		return r["conclusion"] == "cancelled" || r["status"] == "completed"
	})
	second := h.runs()[1]["inputs"].(map[string]any)
	if second["sha"] != newSHA {
		t.Errorf("second run sha %v, want %s", second["sha"], newSHA)
	}
	eventually(t, "two comments", func() bool { return len(h.comments()) == 2 })
	if body := h.comments()[1]["body"].(string); !strings.Contains(body, "cancelled") {
		t.Errorf("second comment does not say the queued build was cancelled:\n%s", body)
	}
}

func TestClosedPRIsNotBuilt(t *testing.T) {
	h := newHarness(t)
	if err := h.gh.ClosePR(e2eRepo, h.pr, "core", false); err != nil {
		t.Fatal(err)
	}
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "core"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "label removed", func() bool { return len(h.labels()) == 0 })
	time.Sleep(300 * time.Millisecond)
	if len(h.runs()) != 0 {
		t.Errorf("a closed PR was built")
	}
}

// TestOldGitHubEnterpriseDispatch: a server that rejects return_run_details
// (GHES ≤ 3.20) still gets one dispatch, and the run is found by the
// request id in its run-name.
func TestOldGitHubEnterpriseDispatch(t *testing.T) {
	h := newHarnessWith(t, ghsim.Options{LegacyDispatch: true}, -1)
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the run recorded", func() bool {
		reqs, _ := h.m.store.ListRequests(context.Background(), 1)
		return len(reqs) == 1 && reqs[0].State == "dispatched" && reqs[0].RunID != 0
	})
	if len(h.runs()) != 1 {
		t.Fatalf("%d runs, want 1", len(h.runs()))
	}
	reqs, _ := h.m.store.ListRequests(context.Background(), 1)
	if got := int64(h.runs()[0]["id"].(float64)); got != reqs[0].RunID {
		t.Errorf("recorded run %d, ghsim's run is %d", reqs[0].RunID, got)
	}
}

// TestLostLabelEventRecovered: the labeled webhook is dropped; the periodic
// search finds the PR still carrying the label and builds its head as the
// labeller asked.
func TestLostLabelEventRecovered(t *testing.T) {
	// GitHub's clock runs 10 minutes behind, so the label looks old enough
	// for the scan (young labels are left to their webhook).
	clk := newGHClock()
	h := newHarnessWith(t, ghsim.Options{Now: clk.now}, 200*time.Millisecond)
	// The manager must have seen the PR's head before the label to know
	// which commit the label was added on: a push it receives.
	h.sha = strings.Repeat("e5", 20)
	if err := h.gh.PushPR(e2eRepo, h.pr, h.sha); err != nil {
		t.Fatal(err)
	}
	h.deliveredOrDropped("synchronize", 1)
	clk.add(30 * time.Second)
	if err := h.gh.AddFault(ghsim.Fault{Kind: ghsim.FaultDrop, Event: "pull_request", Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a run from the recovered label", func() bool { return len(h.runs()) == 1 })
	reqs, _ := h.m.store.ListRequests(context.Background(), 10)
	if len(reqs) != 1 || reqs[0].Actor != "triager" || reqs[0].SHA != h.sha || reqs[0].DeliveryID != "recovered" {
		t.Errorf("requests = %+v; want one recovered request by triager at %s", reqs, h.sha)
	}
	if len(h.labels()) != 0 {
		t.Errorf("label still on the PR after recovery: %v", h.labels())
	}
	// The lost delivery redelivered late, as GitHub's UI or API allows:
	// the same label event, not built again.
	var dropped ghsim.DeliveryRecord
	for _, d := range h.gh.Deliveries() {
		if d.Event == "pull_request" && d.Action == "labeled" && d.Dropped {
			dropped = d
		}
	}
	if dropped.ID == 0 {
		t.Fatal("no dropped labeled delivery recorded")
	}
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/repos/%s/hooks/%d/deliveries/%d/attempts", h.gh.URL(), e2eRepo, dropped.HookID, dropped.ID), nil)
	req.Header.Set("Authorization", "Bearer test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("redelivery: %d", resp.StatusCode)
	}
	eventually(t, "the redelivery handled", func() bool {
		_, err := h.m.store.Delivery(context.Background(), dropped.GUID)
		un, _ := h.m.store.Unprocessed(context.Background(), 10, "pull_request")
		return err == nil && len(un) == 0
	})
	time.Sleep(500 * time.Millisecond)
	if n := h.calls("POST", "/dispatches"); n != 1 {
		t.Errorf("%d dispatches, want 1 (later scans and a late redelivery must not build again)", n)
	}
	// A new label on the same commit is a new request (not the late
	// webhook again); its build is still in flight, so it joins it rather
	// than dispatching a second run. GitHub's event times have whole
	// seconds: let one pass so the two labels differ.
	time.Sleep(1100 * time.Millisecond)
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a second request for the new label, coalesced", func() bool {
		reqs, _ := h.m.store.ListRequests(context.Background(), 10)
		return len(reqs) == 2 && reqs[0].State == "skipped" && strings.Contains(reqs[0].Reason, reqs[1].ID)
	})
	if n := h.calls("POST", "/dispatches"); n != 1 {
		t.Errorf("%d dispatches, want 1 while the first build is in flight", n)
	}
}

func TestUnknownSenderRefused(t *testing.T) {
	h := newHarness(t)
	h.gh.AddUser("drive-by")
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "drive-by"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "refusal", func() bool { return len(h.comments()) == 1 })
	if len(h.runs()) != 0 || len(h.labels()) != 0 {
		t.Errorf("non-collaborator: %d runs, labels %v", len(h.runs()), h.labels())
	}
}
