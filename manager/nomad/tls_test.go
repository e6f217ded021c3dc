package nomad_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/buildfleet/buildfleet/config"
	"github.com/buildfleet/buildfleet/internal/nomadtest"
	"github.com/buildfleet/buildfleet/manager/nomad"
)

// TestTLS reaches a dev agent that serves its API over mutual TLS: the
// client with the CA and a client certificate gets through; every way of
// getting TLS wrong fails with ErrTLS, named as such.
func TestTLS(t *testing.T) {
	ca := nomadtest.NewCA(t)
	ag := nomadtest.Start(t, nomadtest.Options{TLS: ca})
	other := nomadtest.NewCA(t)
	otherCLI := other.CLI(t, "")
	httpAddr := "http://" + strings.TrimPrefix(ag.Addr, "https://")

	tests := []struct {
		name    string
		cfg     config.Nomad
		wantTLS bool
	}{
		{"ca and client certificate", config.Nomad{Address: ag.Addr, CAFile: ca.CertFile, ClientCertFile: ag.CLI.CertFile, ClientKeyFile: ag.CLI.KeyFile}, false},
		{"server name given", config.Nomad{Address: ag.Addr, CAFile: ca.CertFile, ClientCertFile: ag.CLI.CertFile, ClientKeyFile: ag.CLI.KeyFile, TLSServerName: "server.global.nomad"}, false},
		{"system roots only", config.Nomad{Address: ag.Addr, ClientCertFile: ag.CLI.CertFile, ClientKeyFile: ag.CLI.KeyFile}, true},
		{"another CA", config.Nomad{Address: ag.Addr, CAFile: other.CertFile, ClientCertFile: ag.CLI.CertFile, ClientKeyFile: ag.CLI.KeyFile}, true},
		{"wrong server name", config.Nomad{Address: ag.Addr, CAFile: ca.CertFile, ClientCertFile: ag.CLI.CertFile, ClientKeyFile: ag.CLI.KeyFile, TLSServerName: "server.elsewhere.nomad"}, true},
		{"no client certificate", config.Nomad{Address: ag.Addr, CAFile: ca.CertFile}, true},
		{"client certificate of another CA", config.Nomad{Address: ag.Addr, CAFile: ca.CertFile, ClientCertFile: otherCLI.CertFile, ClientKeyFile: otherCLI.KeyFile}, true},
		{"plain http to a TLS server", config.Nomad{Address: httpAddr}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Namespace = "default"
			c, err := nomad.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = c.Ping(ctx)
			switch {
			case !tt.wantTLS && err != nil:
				t.Fatalf("Ping: %v", err)
			case tt.wantTLS && !errors.Is(err, nomad.ErrTLS):
				t.Fatalf("Ping: %v; want ErrTLS", err)
			case tt.wantTLS && !strings.Contains(err.Error(), "TLS"):
				t.Fatalf("error does not name TLS: %v", err)
			}
			if err != nil {
				t.Logf("%v", err)
			}
		})
	}

	if _, err := nomad.New(config.Nomad{Address: ag.Addr, CAFile: ca.Dir + "/missing.pem"}); err == nil || !strings.Contains(err.Error(), "nomad.ca_file") {
		t.Errorf("missing CA file: %v; want an error naming nomad.ca_file", err)
	}
}
