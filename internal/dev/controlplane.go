package dev

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/herald-dev/herald/internal/dev/pki"
	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
)

// controlPlane starts etcd and kube-apiserver with envtest's ControlPlane:
// etcd on a fixed port with its data in the state directory (so a second
// start resumes), kube-apiserver on a fixed port with the front proxy
// configured for the inbox API server. Its serving and client
// certificates are new at every start, so nothing in the state directory
// expires; the kubeconfig is rewritten to match.
func (e *Env) startControlPlane() error {
	certDir := e.state.path("apiserver")
	// envtest only generates the serving certificate when the directory
	// has none, and only then learns the CA the kubeconfig needs.
	if err := os.RemoveAll(certDir); err != nil {
		return err
	}
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return err
	}
	frontProxy, err := pki.NewFrontProxy(certDir, "herald-dev-front-proxy-ca")
	if err != nil {
		return err
	}

	binDir, err := shimBinaries(e.state.path("run", "bin"), e.opts.BinDir, "etcd", "kube-apiserver")
	if err != nil {
		return fmt.Errorf("preparing the control plane binaries: %w", err)
	}
	etcdLog, err := os.Create(e.state.path("logs", "etcd.log"))
	if err != nil {
		return err
	}
	apiLog, err := os.Create(e.state.path("logs", "kube-apiserver.log"))
	if err != nil {
		etcdLog.Close()
		return err
	}
	e.onStop(func() error { etcdLog.Close(); apiLog.Close(); return nil })

	te := &envtest.Environment{
		BinaryAssetsDirectory:    binDir,
		CRDDirectoryPaths:        []string{e.opts.CRDDir},
		ErrorIfCRDPathMissing:    true,
		Scheme:                   Scheme(),
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	// Explicit paths: envtest would otherwise prefer $KUBEBUILDER_ASSETS
	// (which `make dev` sets) over the shims.
	te.ControlPlane.Etcd = &envtest.Etcd{
		Path:    filepath.Join(binDir, "etcd"),
		URL:     &url.URL{Scheme: "http", Host: net.JoinHostPort(loopback, strconv.Itoa(e.Ports.Etcd))},
		DataDir: e.state.path("etcd"),
		Out:     etcdLog,
		Err:     etcdLog,
	}
	api := te.ControlPlane.GetAPIServer()
	api.Path = filepath.Join(binDir, "kube-apiserver")
	api.CertDir = certDir
	api.SecureServing.ListenAddr = envtest.ListenAddr{Address: loopback, Port: strconv.Itoa(e.Ports.APIServer)}
	api.Out, api.Err = apiLog, apiLog
	args := api.Configure()
	for flag, value := range frontProxy.Flags {
		args.Set(flag, value)
	}

	e.onStop(func() error {
		err := te.Stop()
		e.state.forgetPID("kube-apiserver")
		e.state.forgetPID("etcd")
		return err
	})
	cfg, err := te.Start()
	if err != nil {
		return fmt.Errorf("starting etcd and kube-apiserver (logs in %s): %w", e.state.path("logs"), err)
	}
	e.env = te
	// The admission policies shipped with the CRDs (config/crd/policies).
	if err := heraldenvtest.InstallPolicies(context.Background(), cfg, heraldenvtest.PolicyDir(e.opts.RepoRoot)); err != nil {
		return fmt.Errorf("installing the CRDs' admission policies: %w", err)
	}
	e.Config = rest.CopyConfig(cfg)
	e.Config.QPS, e.Config.Burst = 200, 400

	// Files for tools that take certificates rather than a kubeconfig
	// (curl): the API server's CA and the admin's client certificate.
	pki := e.state.path("pki")
	for name, data := range map[string][]byte{"ca.crt": cfg.CAData, "admin.crt": cfg.CertData, "admin.key": cfg.KeyData} {
		if err := os.WriteFile(filepath.Join(pki, name), data, 0o600); err != nil {
			return err
		}
	}
	return e.writeKubeconfig()
}

// writeKubeconfig writes the admin kubeconfig with the demo namespace as
// its context's default.
func (e *Env) writeKubeconfig() error {
	const name = "herald-dev"
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: e.APIServerURL(), CertificateAuthorityData: e.Config.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: e.Config.CertData, ClientKeyData: e.Config.KeyData}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: "admin", Namespace: e.Namespace}
	kc.CurrentContext = name
	e.Kubeconfig = e.state.path("kubeconfig")
	return clientcmd.WriteToFile(*kc, e.Kubeconfig)
}
