package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"strings"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/manager/store"
)

// Sender delivers notices on one channel.
type Sender interface {
	// Channel names it: email, webhook.
	Channel() string
	// Recipient is where a notice for a host with this meta goes on this
	// channel; "" when it cannot go there (no e-mail contact).
	Recipient(meta map[string]string) string
	Send(ctx context.Context, n store.Notice) error
}

// enqueue stores one notice per channel that can reach the host's owner.
func (t *Tracker) enqueue(ctx context.Context, host string, meta map[string]string, kind, subject, body string, now time.Time) error {
	for _, s := range t.o.Senders {
		to := s.Recipient(meta)
		if to == "" {
			continue
		}
		if err := t.st.AddNotice(ctx, store.Notice{Host: host, Kind: kind, Channel: s.Channel(), Recipient: to,
			Owner: meta[MetaOwner], Contact: meta[MetaContact], Subject: subject, Body: body, CreatedAt: now}); err != nil {
			return err
		}
	}
	return nil
}

// SendPending sends the notices not sent yet; a failed one is tried again
// next time, up to MaxTries.
func (t *Tracker) SendPending(ctx context.Context) {
	ns, err := t.st.PendingNotices(ctx)
	if err != nil {
		t.log.Error("listing notices", "err", err)
		return
	}
	for _, n := range ns {
		var s Sender
		for _, x := range t.o.Senders {
			if x.Channel() == n.Channel {
				s = x
			}
		}
		err := errors.New("channel no longer configured")
		if s != nil {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = s.Send(sctx, n)
			cancel()
		}
		if ctx.Err() != nil {
			return
		}
		final := n.Tries+1 >= t.o.MaxTries
		errText, outcome := "", "sent"
		if err != nil {
			errText, outcome = err.Error(), "retried"
			if final {
				outcome = "failed"
			}
			t.log.Warn("sending a notice", "host", n.Host, "channel", n.Channel, "try", n.Tries+1, "err", err)
		} else {
			t.log.Info("notice sent", "host", n.Host, "kind", n.Kind, "channel", n.Channel)
		}
		t.m.notices.WithLabelValues(n.Kind, n.Channel, outcome).Inc()
		if err := t.st.NoticeTried(ctx, n.ID, t.o.Now(), errText, final); err != nil {
			t.log.Error("recording a notice", "notice", n.ID, "err", err)
		}
	}
}

// Email sends notices by SMTP to the contact in the node meta, when it is
// an e-mail address. STARTTLS is used when the server offers it; a
// username authenticates with PLAIN (which net/smtp allows only over TLS
// or to localhost).
type Email struct {
	Config config.SMTP
}

// Channel is "email".
func (Email) Channel() string { return "email" }

// Recipient is the contact, if it is an e-mail address.
func (Email) Recipient(meta map[string]string) string {
	c := strings.TrimSpace(meta[MetaContact])
	a, err := mail.ParseAddress(c)
	if err != nil || strings.ContainsAny(a.Address, "\r\n") {
		return ""
	}
	return a.Address
}

// Send delivers one notice.
func (e Email) Send(ctx context.Context, n store.Notice) error {
	host, _, err := net.SplitHostPort(e.Config.Address)
	if err != nil {
		return fmt.Errorf("smtp address %q: %w", e.Config.Address, err)
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", e.Config.Address)
	if err != nil {
		return fmt.Errorf("connecting to smtp %s: %w", e.Config.Address, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", e.Config.Address, err)
	}
	defer c.Close()
	if err := c.Hello("buildfleet"); err != nil {
		return fmt.Errorf("smtp hello: %w", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}); err != nil {
			return fmt.Errorf("smtp starttls: %w", err)
		}
	}
	if e.Config.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.Config.Username, e.Config.Password.Reveal(), host)); err != nil {
			return fmt.Errorf("smtp auth as %s: %w", e.Config.Username, err)
		}
	}
	if err := c.Mail(e.Config.From); err != nil {
		return fmt.Errorf("smtp mail from: %w", err)
	}
	if err := c.Rcpt(n.Recipient); err != nil {
		return fmt.Errorf("smtp rcpt %s: %w", n.Recipient, err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	if _, err := w.Write(message(e.Config.From, n)); err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	return c.Quit()
}

// message is a plain-text mail; header values come from the store and
// are stripped of line breaks, so no header can be injected.
func message(from string, n store.Notice) []byte {
	clean := strings.NewReplacer("\r", " ", "\n", " ").Replace
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n", clean(from), clean(n.Recipient),
		mimeWord(clean(n.Subject)), n.CreatedAt.UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(n.Body, "\r\n", "\n"), "\n", "\r\n"))
	return b.Bytes()
}

func mimeWord(s string) string {
	for _, r := range s {
		if r > 126 {
			return "=?utf-8?q?" + strings.NewReplacer("=", "=3D", "?", "=3F", " ", "_").Replace(s) + "?="
		}
	}
	return s
}

// Webhook posts every notice as JSON to the operator's URL; a 2xx answer
// is delivery.
type Webhook struct {
	URL    string
	Client *http.Client
}

// Channel is "webhook".
func (Webhook) Channel() string { return "webhook" }

// Recipient is "webhook" for every host: the URL itself may carry a
// token, so it is not stored or shown.
func (Webhook) Recipient(map[string]string) string { return "webhook" }

// WebhookPayload is what the webhook receives.
type WebhookPayload struct {
	Host    string    `json:"host"`
	Kind    string    `json:"kind"`
	Owner   string    `json:"owner"`
	Contact string    `json:"contact"`
	Subject string    `json:"subject"`
	Body    string    `json:"body"`
	At      time.Time `json:"at"`
}

// Send delivers one notice.
func (w Webhook) Send(ctx context.Context, n store.Notice) error {
	p := WebhookPayload{Host: n.Host, Kind: n.Kind, Owner: n.Owner, Contact: n.Contact, Subject: n.Subject, Body: n.Body, At: n.CreatedAt.UTC()}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("notice webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "buildfleet-notify")
	cl := w.Client
	if cl == nil {
		cl = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := cl.Do(req)
	if err != nil {
		// The URL may hold a token: name only its host.
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			err = ue.Unwrap()
		}
		return fmt.Errorf("notice webhook %s: %w", req.URL.Host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("notice webhook %s answered %s", req.URL.Host, resp.Status)
	}
	return nil
}

// Senders builds the senders the config asks for.
func Senders(c config.Notify) []Sender {
	var out []Sender
	if c.SMTP.Address != "" {
		out = append(out, Email{Config: c.SMTP})
	}
	if c.WebhookURL != "" {
		out = append(out, Webhook{URL: c.WebhookURL.Reveal()})
	}
	return out
}
