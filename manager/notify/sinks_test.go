package notify_test

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync"
	"testing"

	"github.com/buildfleet/buildfleet/manager/notify"
)

// mailMsg is one message the SMTP sink accepted.
type mailMsg struct {
	From string
	To   []string
	Data string
}

// smtpSink is a small SMTP server on a free port that accepts every
// message, speaking just enough of RFC 5321 for net/smtp.
type smtpSink struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []mailMsg
}

func newSMTPSink(t *testing.T) *smtpSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpSink{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.serve(c) }()
		}
	}()
	return s
}

func (s *smtpSink) Addr() string { return s.ln.Addr().String() }

func (s *smtpSink) Messages() []mailMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mailMsg(nil), s.msgs...)
}

func (s *smtpSink) serve(c net.Conn) {
	defer c.Close()
	r := textproto.NewReader(bufio.NewReader(c))
	w := textproto.NewWriter(bufio.NewWriter(c))
	_ = w.PrintfLine("220 sink ESMTP")
	var m mailMsg
	for {
		line, err := r.ReadLine()
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "EHLO":
			_ = w.PrintfLine("250-sink")
			_ = w.PrintfLine("250 8BITMIME")
		case "HELO", "NOOP", "RSET":
			_ = w.PrintfLine("250 ok")
		case "MAIL":
			m = mailMsg{From: addrOf(line)}
			_ = w.PrintfLine("250 ok")
		case "RCPT":
			m.To = append(m.To, addrOf(line))
			_ = w.PrintfLine("250 ok")
		case "DATA":
			_ = w.PrintfLine("354 go on")
			b, err := r.ReadDotBytes()
			if err != nil {
				return
			}
			m.Data = string(b)
			s.mu.Lock()
			s.msgs = append(s.msgs, m)
			s.mu.Unlock()
			_ = w.PrintfLine("250 queued")
		case "QUIT":
			_ = w.PrintfLine("221 bye")
			return
		default:
			_ = w.PrintfLine("502 not here")
		}
	}
}

func addrOf(line string) string {
	a, b := strings.Index(line, "<"), strings.Index(line, ">")
	if a < 0 || b < a {
		return ""
	}
	return line[a+1 : b]
}

// hookSink is a JSON webhook receiver; fail answers 500 to that many
// first deliveries.
type hookSink struct {
	srv  *httptest.Server
	mu   sync.Mutex
	fail int
	got  []notify.WebhookPayload
	hits int
}

func newHookSink(t *testing.T, fail int) *hookSink {
	h := &hookSink{fail: fail}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.hits++
		if h.fail > 0 {
			h.fail--
			http.Error(w, "not now", http.StatusInternalServerError)
			return
		}
		var p notify.WebhookPayload
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&p) != nil {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		h.got = append(h.got, p)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookSink) Received() []notify.WebhookPayload {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]notify.WebhookPayload(nil), h.got...)
}
