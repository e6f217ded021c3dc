package nomadtest

import (
	"fmt"
	"net"
	"testing"

	"github.com/buildfleet/buildfleet/nomad/donor"
)

// TestClusterJoinsDonorOverMTLS: a client started from a donor
// configuration joins the server over mutual TLS, in its node pool and
// with its meta; an API client without a certificate is refused.
func TestClusterJoinsDonorOverMTLS(t *testing.T) {
	for _, loopback := range []bool{false, true} {
		t.Run(fmt.Sprintf("loopback=%v", loopback), func(t *testing.T) { testClusterJoins(t, loopback) })
	}
}

func testClusterJoins(t *testing.T, loopback bool) {
	c := StartCluster(t, ClusterOptions{Clients: 1, Loopback: loopback})
	if !c.Netns {
		t.Logf("no network namespaces: %s", c.NoNetnsReason)
	}
	hcl, err := donor.Render(donor.Options{Platform: "linux-x86_64", Tiers: []string{"quick"}, Slots: 1,
		Owner: "Test", Contact: "test@example.org", Servers: []string{c.RPC}, Name: "donor-a"})
	if err != nil {
		t.Fatal(err)
	}
	a := c.StartClient(t, "donor-a", hcl)
	n, _, err := c.Server.Client.Nodes().Info(a.NodeID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.NodePool != donor.DefaultNodePool("linux-x86_64") || n.Meta["buildfleet_tiers"] != "quick" {
		t.Errorf("node pool %q meta %v", n.NodePool, n.Meta)
	}
	if host, _, _ := net.SplitHostPort(n.HTTPAddr); c.Netns && host == "127.0.0.1" {
		t.Errorf("client in a namespace advertises %s", n.HTTPAddr)
	}
	cfg := c.APIConfig(c.Server.Addr)
	cfg.TLSConfig.ClientCert, cfg.TLSConfig.ClientKey = "", ""
	if cl, err := newAPIClient(cfg); err == nil {
		if _, _, err := cl.Nodes().List(nil); err == nil {
			t.Error("the server answered a client without a certificate")
		}
	}
}
