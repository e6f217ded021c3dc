// Package mailsink is a small SMTP server for tests: it listens on a free
// loopback port, accepts every message and keeps it, speaking just enough
// of RFC 5321 (EHLO, MAIL, RCPT, DATA, QUIT) for net/smtp.
package mailsink

import (
	"bufio"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
)

// Message is one message the sink accepted.
type Message struct {
	From string
	To   []string
	Data string
}

// Sink is a running SMTP server.
type Sink struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []Message
}

// Start starts a sink, closed when the test ends.
func Start(t testing.TB) *Sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Sink{ln: ln}
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

// Addr is the sink's host:port.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// Messages returns the messages accepted so far.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

func (s *Sink) serve(c net.Conn) {
	defer c.Close()
	r := textproto.NewReader(bufio.NewReader(c))
	w := textproto.NewWriter(bufio.NewWriter(c))
	_ = w.PrintfLine("220 sink ESMTP")
	var m Message
	for {
		line, err := r.ReadLine()
		if err != nil {
			return
		}
		switch strings.ToUpper(strings.Fields(line + " x")[0]) {
		case "EHLO":
			_ = w.PrintfLine("250-sink")
			_ = w.PrintfLine("250 8BITMIME")
		case "HELO", "NOOP", "RSET":
			_ = w.PrintfLine("250 ok")
		case "MAIL":
			m = Message{From: addrOf(line)}
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
