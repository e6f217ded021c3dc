package manager

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/mailsink"
	"github.com/buildfleet/buildfleet/manager/notify"
)

// TestFailingHostTakenOutOwnerTold: runners that fail before taking their
// job on the only host, three times in a row, take the host out of
// scheduling in Nomad; its owner gets exactly one e-mail and one webhook
// notice, and the hosts page says so.
func TestFailingHostTakenOutOwnerTold(t *testing.T) {
	mail := mailsink.Start(t)
	var mu sync.Mutex
	var hooks []notify.WebhookPayload
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p notify.WebhookPayload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		mu.Lock()
		hooks = append(hooks, p)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	h, ag := newFleetHarnessWith(t, fleetSetup{script: "echo no runner here >&2\nexit 3\n",
		pools: []config.Pool{fleetPools()[0], fleetPools()[3]},
		meta:  map[string]string{notify.MetaOwner: "Jane Doe", notify.MetaContact: "jane@example.org"},
		notify: &config.Notify{MaxFailures: 3, FailureWindow: config.Duration(time.Hour),
			SMTP: config.SMTP{Address: mail.Addr(), From: "fleet@example.org"}, WebhookURL: config.Secret(hook.URL)}})
	if err := h.gh.LabelPR(e2eRepo, h.pr, quick, "triager"); err != nil {
		t.Fatal(err)
	}
	h.waitFinal(1, 90*time.Second)
	eventually(t, "host ineligible", func() bool {
		n, _, err := ag.Client.Nodes().Info(ag.NodeID, nil)
		return err == nil && n.SchedulingEligibility == "ineligible"
	})
	eventually(t, "one e-mail and one webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(mail.Messages()) == 1 && len(hooks) == 1
	})
	// Notices are stored before they are sent: the store holds every one.
	node, _, err := ag.Client.Nodes().Info(ag.NodeID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ns, err := h.m.store.HostNotices(context.Background(), node.Name, 10); err != nil || len(ns) != 2 {
		t.Errorf("stored notices %+v (%v), want one e-mail and one webhook", ns, err)
	}
	mu.Lock()
	defer mu.Unlock()
	msgs := mail.Messages()
	if len(msgs) != 1 || len(hooks) != 1 {
		t.Fatalf("%d e-mails, %d webhooks; want exactly one each", len(msgs), len(hooks))
	}
	if msgs[0].To[0] != "jane@example.org" || !strings.Contains(msgs[0].Data, "was taken out of scheduling") {
		t.Errorf("e-mail %+v", msgs[0])
	}
	if hooks[0].Kind != notify.NoticeIneligible || hooks[0].Owner != "Jane Doe" {
		t.Errorf("webhook %+v", hooks[0])
	}
	page := h.page("http://" + h.m.Addr().String() + "/hosts")
	for _, want := range []string{"Jane Doe", "disabled by buildfleet", "ineligible by email: sent", "ineligible by webhook: sent"} {
		if !strings.Contains(page, want) {
			t.Errorf("hosts page lacks %q", want)
		}
	}
}
