package nomad

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
)

// ErrTLS is returned when Nomad could not be reached because TLS failed:
// an untrusted or misnamed server certificate, a refused or missing client
// certificate, or HTTPS spoken to a plain HTTP server (or the reverse).
var ErrTLS = errors.New("TLS with nomad failed")

// reachErr names a TLS failure as such, with the keys that fix it; any
// other failure stays a plain "reaching nomad" error.
func (c *Client) reachErr(err error) error {
	if why := tlsFailure(err, c.addr); why != "" {
		return fmt.Errorf("reaching nomad at %s: %w: %s (check nomad.address, nomad.ca_file, nomad.client_cert_file, nomad.client_key_file, nomad.tls_server_name): %v",
			c.addr, ErrTLS, why, err)
	}
	return fmt.Errorf("reaching nomad at %s: %w", c.addr, err)
}

// tlsFailure says which TLS problem err is, or "".
func tlsFailure(err error, addr string) string {
	var (
		unknownCA  x509.UnknownAuthorityError
		hostname   x509.HostnameError
		invalid    x509.CertificateInvalidError
		verify     *tls.CertificateVerificationError
		alert      tls.AlertError
		header     tls.RecordHeaderError
		unverified *x509.UnknownAuthorityError
		op         *net.OpError
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &unverified):
		return "the server's certificate is not signed by a trusted CA"
	case errors.As(err, &hostname):
		return "the server's certificate is not valid for the name asked for"
	case errors.As(err, &invalid):
		return "the server's certificate is invalid"
	case errors.As(err, &verify):
		return "the server's certificate was not accepted"
	case errors.As(err, &op) && op.Op == "remote error", errors.As(err, &alert):
		// crypto/tls reports the peer's alerts as an OpError "remote error".
		return "the server refused the handshake (a client certificate it trusts is needed?)"
	case errors.As(err, &header):
		return "the server does not speak TLS; use an http:// address"
	}
	if u, perr := url.Parse(addr); perr == nil && u.Scheme == "http" && statusCode(err) == 400 {
		return "the server speaks TLS; use an https:// address"
	}
	return ""
}
