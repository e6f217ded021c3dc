package config

import (
	"net"
	"net/mail"
	"net/url"
	"time"
)

// Notify configures host health tracking and the notices sent to donors
// (see the manager's notify package).
type Notify struct {
	// MissingAfter is how long a host may be down or gone before its owner
	// is told (default 15m).
	MissingAfter Duration `mapstructure:"missing_after" yaml:"missing_after"`
	// MaxFailures infrastructure failures in a row within FailureWindow
	// take a host out of scheduling (default 3 in 1h).
	MaxFailures   int      `mapstructure:"max_failures" yaml:"max_failures"`
	FailureWindow Duration `mapstructure:"failure_window" yaml:"failure_window"`
	// SMTP sends notices by e-mail to the contact in the host's node meta;
	// empty Address sends none.
	SMTP SMTP `mapstructure:"smtp" yaml:"smtp"`
	// WebhookURL receives every notice as JSON; empty sends none. It is
	// a secret: such URLs often carry their token.
	WebhookURL Secret `mapstructure:"webhook_url" yaml:"webhook_url"`
}

// SMTP is a mail server that accepts the manager's notices.
type SMTP struct {
	// Address is host:port; STARTTLS is used when the server offers it.
	Address  string `mapstructure:"address" yaml:"address"`
	From     string `mapstructure:"from" yaml:"from"`
	Username string `mapstructure:"username" yaml:"username"`
	Password Secret `mapstructure:"password" yaml:"password"`
}

func (n *Notify) applyDefaults() {
	if n.MissingAfter == 0 {
		n.MissingAfter = Duration(15 * time.Minute)
	}
	if n.MaxFailures == 0 {
		n.MaxFailures = 3
	}
	if n.FailureWindow == 0 {
		n.FailureWindow = Duration(time.Hour)
	}
}

func (n Notify) validate(bad func(key, format string, args ...any)) {
	if n.MissingAfter <= 0 {
		bad("notify.missing_after", "must be positive, got %s", n.MissingAfter)
	}
	if n.MaxFailures < 1 {
		bad("notify.max_failures", "must be at least 1, got %d", n.MaxFailures)
	}
	if n.FailureWindow <= 0 {
		bad("notify.failure_window", "must be positive, got %s", n.FailureWindow)
	}
	if n.SMTP.Address != "" {
		if _, _, err := net.SplitHostPort(n.SMTP.Address); err != nil {
			bad("notify.smtp.address", "must be host:port, got %q", n.SMTP.Address)
		}
		if _, err := mail.ParseAddress(n.SMTP.From); err != nil {
			bad("notify.smtp.from", "must be an e-mail address, got %q", n.SMTP.From)
		}
	}
	if n.WebhookURL != "" {
		if u, err := url.Parse(n.WebhookURL.Reveal()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("notify.webhook_url", "must be an http(s) URL (not shown: it may hold a token)")
		}
	}
}
