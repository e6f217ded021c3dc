package manager

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/internal/nomadtest"
)

// TestReadyOverTLS connects the manager to a Nomad that serves mutual TLS:
// without a client certificate /readyz names the TLS failure; with the
// certificates of config nomad.* it becomes ready.
func TestReadyOverTLS(t *testing.T) {
	ca := nomadtest.NewCA(t)
	ag := nomadtest.Start(t, nomadtest.Options{TLS: ca})
	var calls atomic.Int64
	gh := fakeGitHub(t, &calls)

	readyz := func(t *testing.T, cfgEdit func(*Options)) map[string]string {
		t.Helper()
		o := Options{Config: testConfig(t, gh.URL, ag.Addr), RecoverEvery: -1}
		o.Config.Nomad.CAFile = ca.CertFile
		cfgEdit(&o)
		m, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		defer func() { cancel(); <-done }()
		base := "http://" + m.Addr().String()
		var checks map[string]string
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			_, body := get(t, base+"/readyz")
			checks = nil
			if err := json.Unmarshal([]byte(body), &checks); err != nil {
				t.Fatalf("/readyz: %s", body)
			}
			if checks["nomad"] != "not reached yet" {
				break
			}
		}
		return checks
	}

	t.Run("no client certificate", func(t *testing.T) {
		checks := readyz(t, func(*Options) {})
		if !strings.Contains(checks["nomad"], "TLS") || !strings.Contains(checks["nomad"], "nomad.client_cert_file") {
			t.Errorf("/readyz nomad = %q; want a TLS failure naming the keys", checks["nomad"])
		}
	})
	t.Run("client certificate", func(t *testing.T) {
		checks := readyz(t, func(o *Options) {
			o.Config.Nomad.ClientCertFile, o.Config.Nomad.ClientKeyFile = ag.CLI.CertFile, ag.CLI.KeyFile
		})
		if checks["nomad"] != "ok" {
			t.Errorf("/readyz = %v", checks)
		}
	})
}

// TestNewReportsBusyPort: a listen address in use is an error naming it,
// and everything opened before is closed again (no panic tearing down).
func TestNewReportsBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := testConfig(t, "http://127.0.0.1:1", "http://127.0.0.1:1")
	c.Listen = ln.Addr().String()
	m, err := New(Options{Config: c})
	if err == nil || m != nil || !strings.Contains(err.Error(), "listen") || !strings.Contains(err.Error(), c.Listen) {
		t.Fatalf("New on a busy port = %v, %v; want an error naming the address", m, err)
	}
	// The store was closed: opening it again works at once.
	c.Listen = "127.0.0.1:0"
	m, err = New(Options{Config: c})
	if err != nil {
		t.Fatalf("New after the failure: %v", err)
	}
	_ = m.stop()
}
