package status

import (
	"context"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/buildfleet/buildfleet/manager/notify"
)

// HostHealth reports every host with its health, failures and notices
// (notify.Tracker is one).
type HostHealth interface {
	Hosts(ctx context.Context) ([]notify.Host, error)
}

var _ HostHealth = (*notify.Tracker)(nil)

// hostView is one host on the hosts page. Owner and contact come from the
// node meta a donor set: untrusted text, escaped by the template; the
// contact becomes a link only as a mailto: or http(s) URL.
type hostView struct {
	Name        string        `json:"name"`
	ID          string        `json:"id"`
	Datacenter  string        `json:"datacenter"`
	NodePool    string        `json:"node_pool"`
	Owner       string        `json:"owner"`
	Contact     string        `json:"contact"`
	ContactURL  string        `json:"-"`
	Platform    string        `json:"platform"`
	Tiers       string        `json:"tiers"`
	Isolation   string        `json:"isolation"`
	Status      string        `json:"status"`
	Health      string        `json:"health"`
	Eligible    bool          `json:"eligible"`
	Draining    bool          `json:"draining"`
	Disabled    bool          `json:"disabled_by_fleet"`
	Downtime    string        `json:"downtime,omitempty"`
	Slots       int           `json:"slots"`
	Used        int           `json:"used"`
	LastSeen    time.Time     `json:"last_seen,omitzero"`
	LastSeenAgo string        `json:"-"`
	Failures    []failureView `json:"failures"`
	Notices     []noticeView  `json:"notices"`
}

type failureView struct {
	At     time.Time `json:"at"`
	Runner string    `json:"runner"`
	Kind   string    `json:"kind"`
	Detail string    `json:"detail"`
}

// noticeView is a notice without its body; the recipient is the owner's
// contact (already on the page) or "webhook".
type noticeView struct {
	At        time.Time `json:"at"`
	Kind      string    `json:"kind"`
	Channel   string    `json:"channel"`
	Recipient string    `json:"recipient"`
	State     string    `json:"state"`
	Tries     int       `json:"tries"`
}

func contactURL(c string) string {
	c = strings.TrimSpace(c)
	if a, err := mail.ParseAddress(c); err == nil {
		return "mailto:" + a.Address
	}
	if u, err := url.Parse(c); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		return u.String()
	}
	return ""
}

func (s *server) hostViews(ctx context.Context) ([]hostView, bool, error) {
	if s.health == nil {
		return nil, false, nil
	}
	hs, err := s.health.Hosts(ctx)
	if err != nil {
		return nil, true, err
	}
	out := make([]hostView, 0, len(hs))
	for _, h := range hs {
		v := hostView{Name: h.Name, ID: h.ID, Datacenter: h.Datacenter, NodePool: h.NodePool, Owner: h.Owner,
			Contact: h.Contact, ContactURL: contactURL(h.Contact), Platform: h.Platform, Tiers: h.Tiers,
			Isolation: h.Isolation, Status: h.Status, Health: h.Health, Eligible: h.Eligible, Draining: h.Draining,
			Disabled: h.DisabledByFleet, Downtime: h.Downtime, Slots: h.Slots, Used: h.Used, LastSeen: utc(h.LastSeen),
			Failures: []failureView{}, Notices: []noticeView{}}
		if !h.LastSeen.IsZero() {
			v.LastSeenAgo = age(s.now().Sub(h.LastSeen))
		}
		for _, f := range h.Failures {
			v.Failures = append(v.Failures, failureView{At: f.At.UTC(), Runner: f.RunnerName, Kind: f.Kind, Detail: f.Detail})
		}
		for _, n := range h.Notices {
			v.Notices = append(v.Notices, noticeView{At: n.CreatedAt.UTC(), Kind: n.Kind, Channel: n.Channel,
				Recipient: n.Recipient, State: n.State, Tries: n.Tries})
		}
		out = append(out, v)
	}
	return out, true, nil
}

func (s *server) hostsPage(w http.ResponseWriter, r *http.Request) {
	hs, known, err := s.hostViews(r.Context())
	if err != nil {
		s.log.Warn("listing hosts", "err", err)
		s.render(w, http.StatusOK, "hosts", map[string]any{"Title": "hosts", "Refresh": true, "Known": known,
			"Error": "hosts could not be listed"})
		return
	}
	s.render(w, http.StatusOK, "hosts", map[string]any{"Title": "hosts", "Refresh": true, "Hosts": hs, "Known": known})
}

func (s *server) apiHosts(w http.ResponseWriter, r *http.Request) {
	hs, _, err := s.hostViews(r.Context())
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	if hs == nil {
		hs = []hostView{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"hosts": hs})
}
