package envtest

import (
	"crypto/tls"
	"fmt"
	"path/filepath"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/herald-dev/herald/internal/pki"
)

// FrontProxyClientName is the common name of the client certificate
// kube-apiserver presents to aggregated API servers.
const FrontProxyClientName = "front-proxy-client"

// FrontProxy is the PKI kube-apiserver uses towards aggregated API
// servers: tests use the CA to issue other client certificates.
type FrontProxy struct {
	CA     *pki.KeyPair
	Client tls.Certificate
}

// ConfigureFrontProxy gives env's kube-apiserver a front-proxy CA and client
// certificate (written to dir), so that it can forward authenticated
// requests to an aggregated API server such as Herald's inbox. Call it
// before env.Start. kube-apiserver then publishes the CA in
// kube-system/extension-apiserver-authentication, where the aggregated
// server reads it.
func ConfigureFrontProxy(env *envtest.Environment, dir string) (*FrontProxy, error) {
	ca, err := pki.NewCA("herald-test-front-proxy-ca")
	if err != nil {
		return nil, fmt.Errorf("front-proxy CA: %w", err)
	}
	client, err := ca.Client(FrontProxyClientName)
	if err != nil {
		return nil, fmt.Errorf("front-proxy client certificate: %w", err)
	}
	caFile := filepath.Join(dir, "front-proxy-ca.crt")
	certFile := filepath.Join(dir, "front-proxy-client.crt")
	keyFile := filepath.Join(dir, "front-proxy-client.key")
	if err := ca.Write(caFile, ""); err != nil {
		return nil, err
	}
	if err := client.Write(certFile, keyFile); err != nil {
		return nil, err
	}
	args := env.ControlPlane.GetAPIServer().Configure()
	args.Set("requestheader-client-ca-file", caFile)
	args.Set("requestheader-allowed-names", FrontProxyClientName)
	args.Set("requestheader-username-headers", "X-Remote-User")
	args.Set("requestheader-group-headers", "X-Remote-Group")
	args.Set("requestheader-extra-headers-prefix", "X-Remote-Extra-")
	args.Set("proxy-client-cert-file", certFile)
	args.Set("proxy-client-key-file", keyFile)
	tlsClient, err := client.TLS()
	if err != nil {
		return nil, err
	}
	return &FrontProxy{CA: ca, Client: tlsClient}, nil
}
