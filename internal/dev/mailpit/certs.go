package mailpit

import (
	"net"

	"github.com/herald-dev/herald/internal/dev/pki"
)

// testPKI is a throw-away CA plus one server certificate issued by it. A
// separate CA (rather than a self-signed leaf) lets clients be tested the way
// they are configured in production: trust an extra CA, verify the host name.
type testPKI struct {
	caPEM   []byte
	certPEM []byte
	keyPEM  []byte
}

// newTestPKI issues a server certificate valid for localhost, 127.0.0.1 and
// ::1, which are the only names the child Mailpit is reachable under.
func newTestPKI() (*testPKI, error) {
	ca, err := pki.NewCA("herald test CA")
	if err != nil {
		return nil, err
	}
	server, err := ca.Serving("localhost", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
	if err != nil {
		return nil, err
	}
	return &testPKI{caPEM: ca.CertPEM, certPEM: server.CertPEM, keyPEM: server.KeyPEM}, nil
}
