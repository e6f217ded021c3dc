package ghsim

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// Sign returns the X-Hub-Signature-256 value for body: "sha256=" and the
// hex HMAC-SHA256 of the raw body keyed by the hook's secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func signSHA1(secret string, body []byte) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write(body)
	return "sha1=" + hex.EncodeToString(m.Sum(nil))
}

// addHook registers a webhook on rp and sends it a ping, as GitHub does on
// creation. Callers hold s.mu.
func (s *Server) addHook(rp *repo, url, secret string, events []string) *hook {
	if len(events) == 0 {
		events = []string{"*"}
	}
	h := &hook{ID: s.st.id(), Repo: rp, URL: url, Secret: secret, Events: events, CreatedAt: s.now()}
	h.q = newHookQueue()
	s.st.hooks[h.ID] = h
	s.hooksWG.Add(1)
	go func() {
		defer s.hooksWG.Done()
		s.runHookQueue(h)
	}()
	s.emitTo([]*hook{h}, rp, "ping", "", obj{
		"zen": "Design for failure.", "hook_id": h.ID, "hook": s.hookJSON(h),
	}, nil)
	return h
}

func (s *Server) hookJSON(h *hook) obj {
	api := s.repoAPI(h.Repo) + "/hooks/" + strconv.FormatInt(h.ID, 10)
	ev := make([]any, len(h.Events))
	for i, e := range h.Events {
		ev[i] = e
	}
	cfg := obj{"content_type": "json", "url": h.URL, "insecure_ssl": "0"}
	if h.Secret != "" {
		cfg["secret"] = "********"
	}
	j := obj{
		"type": "Repository", "id": h.ID, "name": "web", "active": true, "events": ev,
		"config":     cfg,
		"updated_at": ts(h.CreatedAt), "created_at": ts(h.CreatedAt), "url": api,
		"test_url": api + "/test", "ping_url": api + "/pings", "deliveries_url": api + "/deliveries",
		"last_response": obj{"code": nil, "status": "unused", "message": nil},
	}
	if s.opts.InstallationID != 0 {
		j["app_id"] = 15368 // a hook created by an App names it
	}
	return j
}

// emit sends event to every hook of rp subscribed to it. payload gets the
// common fields (action, repository, sender, organization, installation).
// Callers hold s.mu, so deliveries are queued in the order state changed.
func (s *Server) emit(rp *repo, event, action string, sender *user, payload obj) {
	var hooks []*hook
	for _, h := range s.st.hooks {
		if h.Repo == rp && h.wants(event) {
			hooks = append(hooks, h)
		}
	}
	sort.Slice(hooks, func(i, j int) bool { return hooks[i].ID < hooks[j].ID })
	s.emitTo(hooks, rp, event, action, payload, sender)
}

func (s *Server) emitTo(hooks []*hook, rp *repo, event, action string, payload obj, sender *user) {
	if len(hooks) == 0 {
		return
	}
	if action != "" {
		payload["action"] = action
	}
	payload["repository"] = s.repoJSON(rp)
	if sender == nil {
		sender = rp.Owner
	}
	payload["sender"] = s.userJSON(sender)
	if rp.Owner.Type == "Organization" {
		payload["organization"] = s.orgJSON(rp.Owner)
	}
	if s.opts.InstallationID != 0 {
		payload["installation"] = s.installationJSON()
	}
	body, err := json.Marshal(payload)
	if err != nil {
		s.log.Error("encoding webhook payload", "event", event, "err", err)
		return
	}
	for _, h := range hooks {
		d := &delivery{ID: s.st.id(), GUID: guid(), Event: event, Action: action, Body: body}
		s.enqueue(h, d)
	}
}

// enqueue applies webhook faults and queues d on h. Callers hold s.mu.
func (s *Server) enqueue(h *hook, d *delivery) {
	f := s.faults.matchHook(d.Event, d.Action)
	kind := ""
	if f != nil {
		kind = f.Kind
	}
	switch kind {
	case FaultDrop:
		d.Dropped = true
		d.DeliveredAt = s.opts.Now()
		d.Status = "failed to connect to host"
		h.Deliv = append(h.Deliv, d)
		return
	case FaultDuplicate:
		dup := *d
		dup.ID = s.st.id()
		h.q.push(d, false)
		h.q.push(&dup, false)
		return
	}
	h.q.push(d, kind == FaultReorder)
}

// runHookQueue delivers h's queue in order, one at a time, until Close.
func (s *Server) runHookQueue(h *hook) {
	client := &http.Client{Timeout: s.opts.WebhookTimeout}
	for {
		it, ok := h.q.pop(0)
		if !ok {
			return
		}
		if it.hold {
			// Out of order: send the next delivery first, if one comes soon.
			if next, ok := h.q.pop(500 * time.Millisecond); ok {
				s.deliver(client, h, next.d)
			}
		}
		s.deliver(client, h, it.d)
	}
}

// deliver POSTs d to h's URL and records the outcome. Like GitHub, it does
// not retry: recovery is redelivery through the API.
func (s *Server) deliver(client *http.Client, h *hook, d *delivery) {
	req, err := http.NewRequest(http.MethodPost, h.URL, bytes.NewReader(d.Body))
	if err != nil {
		s.log.Error("building webhook request", "url", h.URL, "err", err)
		return
	}
	hdr := map[string]string{
		"Content-Type":                           "application/json",
		"User-Agent":                             "GitHub-Hookshot/ghsim",
		"X-GitHub-Event":                         d.Event,
		"X-GitHub-Delivery":                      d.GUID,
		"X-GitHub-Hook-ID":                       strconv.FormatInt(h.ID, 10),
		"X-GitHub-Hook-Installation-Target-ID":   strconv.FormatInt(h.Repo.ID, 10),
		"X-GitHub-Hook-Installation-Target-Type": "repository",
	}
	if h.Secret != "" {
		hdr["X-Hub-Signature"] = signSHA1(h.Secret, d.Body)
		hdr["X-Hub-Signature-256"] = Sign(h.Secret, d.Body)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := client.Do(req)
	dur := time.Since(start)
	rec := *d
	rec.Headers, rec.DeliveredAt, rec.Duration = hdr, s.opts.Now(), dur
	if err != nil {
		rec.Status = "failed to connect to host"
		s.log.Debug("webhook failed", "event", d.Event, "err", err)
	} else {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		rec.StatusCode, rec.RespBody = resp.StatusCode, string(b)
		rec.RespHeaders = map[string]string{}
		for k := range resp.Header {
			rec.RespHeaders[k] = resp.Header.Get(k)
		}
		rec.Status = "OK"
		if resp.StatusCode >= 300 {
			rec.Status = fmt.Sprintf("Invalid HTTP Response: %d", resp.StatusCode)
		}
	}
	s.mu.Lock()
	h.Deliv = append(h.Deliv, &rec)
	s.cond.Broadcast()
	s.mu.Unlock()
}
