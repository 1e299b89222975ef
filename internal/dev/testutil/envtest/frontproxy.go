package envtest

import (
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/herald-dev/herald/internal/dev/pki"
)

// ConfigureFrontProxy gives env's kube-apiserver a front-proxy CA and client
// certificate (written to dir), so that it can forward authenticated
// requests to an aggregated API server such as Herald's inbox. Call it
// before env.Start. Tests use the returned CA to issue other client
// certificates.
func ConfigureFrontProxy(env *envtest.Environment, dir string) (*pki.FrontProxy, error) {
	fp, err := pki.NewFrontProxy(dir, "herald-test-front-proxy-ca")
	if err != nil {
		return nil, fmt.Errorf("front-proxy certificates: %w", err)
	}
	args := env.ControlPlane.GetAPIServer().Configure()
	for flag, value := range fp.Flags {
		args.Set(flag, value)
	}
	return fp, nil
}
