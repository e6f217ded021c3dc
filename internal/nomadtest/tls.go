package nomadtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a throwaway certificate authority for a test's Nomad agents, the
// manager and the CLI: the certificates `nomad tls ca create` and `nomad
// tls cert create -server|-client|-cli` would make, written as PEM files
// into a folder the test removes.
type CA struct {
	// Dir holds every file.
	Dir string
	// CertFile is the CA certificate (PEM): what ca_file, nomad.ca_file
	// and NOMAD_CACERT name.
	CertFile string

	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	serial atomic.Int64
}

// Pair is a certificate and its key, as PEM files.
type Pair struct {
	CertFile, KeyFile string
}

// NewCA makes a CA in a new temporary folder.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "buildfleet test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{Dir: t.TempDir(), cert: cert, key: key}
	ca.serial.Store(1)
	ca.CertFile = filepath.Join(ca.Dir, "ca.pem")
	writePEM(t, ca.CertFile, "CERTIFICATE", der)
	return ca
}

// Server issues the certificate of a Nomad server of region (default
// "global"): server.<region>.nomad, localhost and 127.0.0.1, for both
// serving and joining, as `nomad tls cert create -server` does.
func (ca *CA) Server(t testing.TB, region string) Pair {
	t.Helper()
	return ca.Issue(t, "server."+regionOr(region)+".nomad", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
}

// Client issues the certificate of a Nomad client agent of region:
// client.<region>.nomad, localhost and 127.0.0.1 (its HTTP API is served
// with it too), as `nomad tls cert create -client` does.
func (ca *CA) Client(t testing.TB, region string) Pair {
	t.Helper()
	return ca.Issue(t, "client."+regionOr(region)+".nomad", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
}

// Combined issues the certificate of a dev agent, which is a server and
// a client at once: server.<region>.nomad and client.<region>.nomad,
// localhost and 127.0.0.1.
func (ca *CA) Combined(t testing.TB, region string) Pair {
	t.Helper()
	r := regionOr(region)
	return ca.Issue(t, "server."+r+".nomad", []string{"client." + r + ".nomad", "localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
}

// CLI issues a certificate for an API user (the manager, `buildfleet
// nomad apply`, the nomad CLI), as `nomad tls cert create -cli` does.
func (ca *CA) CLI(t testing.TB, region string) Pair {
	t.Helper()
	return ca.Issue(t, "cli."+regionOr(region)+".nomad", []string{"localhost"}, nil)
}

// Issue signs a certificate for name (its CN and first DNS name) plus dns
// and ips, usable for serving and as a client, and writes it with its key
// into ca.Dir as <name>.pem and <name>-key.pem (a later one with the same
// name gets a numbered suffix).
func (ca *CA) Issue(t testing.TB, name string, dns []string, ips []net.IP) Pair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial := ca.serial.Add(1)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     append([]string{name}, dns...),
		IPAddresses:  ips,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(ca.Dir, name)
	if _, err := os.Stat(base + ".pem"); err == nil {
		base = fmt.Sprintf("%s-%d", base, serial)
	}
	p := Pair{CertFile: base + ".pem", KeyFile: base + "-key.pem"}
	writePEM(t, p.CertFile, "CERTIFICATE", der)
	writePEM(t, p.KeyFile, "EC PRIVATE KEY", kb)
	return p
}

// TLSHCL is the agent tls block that serves HTTP and RPC with p, trusts
// only the CA, checks the servers' names and asks HTTPS clients for a
// certificate of the CA: the mTLS of a real fleet.
func (ca *CA) TLSHCL(p Pair) string {
	return fmt.Sprintf("tls {\n  http = true\n  rpc = true\n  ca_file = %q\n  cert_file = %q\n  key_file = %q\n"+
		"  verify_server_hostname = true\n  verify_https_client = true\n}\n", ca.CertFile, p.CertFile, p.KeyFile)
}

func regionOr(r string) string {
	if r == "" {
		return "global"
	}
	return r
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
