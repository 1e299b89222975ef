package pki

import "path/filepath"

// FrontProxyClientName is the common name of the client certificate
// kube-apiserver presents to aggregated API servers.
const FrontProxyClientName = "front-proxy-client"

// FrontProxy is the PKI kube-apiserver uses to forward authenticated
// requests to aggregated API servers such as Herald's inbox.
type FrontProxy struct {
	CA, Client *KeyPair
	// Flags are the kube-apiserver flags that configure it. kube-apiserver
	// then publishes the CA in kube-system/extension-apiserver-authentication,
	// where aggregated servers read it.
	Flags map[string]string
}

// NewFrontProxy issues a front-proxy CA named caName and the client
// certificate kube-apiserver presents, and writes them to dir.
func NewFrontProxy(dir, caName string) (*FrontProxy, error) {
	ca, err := NewCA(caName)
	if err != nil {
		return nil, err
	}
	client, err := ca.Client(FrontProxyClientName)
	if err != nil {
		return nil, err
	}
	caFile := filepath.Join(dir, "front-proxy-ca.crt")
	certFile, keyFile := filepath.Join(dir, "front-proxy-client.crt"), filepath.Join(dir, "front-proxy-client.key")
	if err := ca.Write(caFile, ""); err != nil {
		return nil, err
	}
	if err := client.Write(certFile, keyFile); err != nil {
		return nil, err
	}
	return &FrontProxy{CA: ca, Client: client, Flags: map[string]string{
		"requestheader-client-ca-file":       caFile,
		"requestheader-allowed-names":        FrontProxyClientName,
		"requestheader-username-headers":     "X-Remote-User",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"proxy-client-cert-file":             certFile,
		"proxy-client-key-file":              keyFile,
	}}, nil
}
