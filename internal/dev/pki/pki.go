// Package pki issues the throw-away certificates a local control plane and
// its helpers need: a CA, serving and client certificates signed by it.
// They are ECDSA P-256, valid for a year from an hour ago; herald dev and
// the tests make new ones at every start.
//
// It is dev-only, like everything under internal/dev: the inbox API server
// in production gets its serving certificate from its flags (or generates
// one itself through k8s.io/apiserver), never from here.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"time"
)

// KeyPair is a certificate and its private key, parsed and PEM encoded.
type KeyPair struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	KeyPEM  []byte
}

// NewCA returns a self-signed CA.
func NewCA(cn string) (*KeyPair, error) {
	return issue(nil, &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	})
}

// Serving issues a TLS server certificate for the names and addresses.
func (ca *KeyPair) Serving(cn string, dns []string, ips []net.IP) (*KeyPair, error) {
	return issue(ca, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		DNSNames:    dns,
		IPAddresses: ips,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// Client issues a TLS client certificate; groups become its organizations,
// which kube-apiserver reads as the user's groups.
func (ca *KeyPair) Client(cn string, groups ...string) (*KeyPair, error) {
	return issue(ca, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: groups},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func issue(parent *KeyPair, tmpl *x509.Certificate) (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(365 * 24 * time.Hour)
	signer, signerCert := key, tmpl
	if parent != nil {
		signer, signerCert = parent.Key, parent.Cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &KeyPair{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// Write stores the pair as certFile and keyFile (mode 0600); with no
// keyFile only the certificate is written.
func (kp *KeyPair) Write(certFile, keyFile string) error {
	if err := os.WriteFile(certFile, kp.CertPEM, 0o600); err != nil {
		return err
	}
	if keyFile == "" {
		return nil
	}
	return os.WriteFile(keyFile, kp.KeyPEM, 0o600)
}

// TLS returns the pair for crypto/tls.
func (kp *KeyPair) TLS() (tls.Certificate, error) {
	return tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
}
