// Package servingcert gives the inbox API server a serving certificate
// without cert-manager: github.com/open-policy-agent/cert-controller's
// rotator keeps a CA and a serving certificate in a Secret, renews them
// before they expire, and writes the CA into the APIService's caBundle so
// that kube-apiserver's aggregator trusts the server. The pod mounts the
// Secret; the generic API server reloads the mounted files when the
// kubelet updates them, so a rotation needs no restart.
//
// Every replica runs a rotator, without leader election: they converge on
// one Secret through optimistic concurrency, and each waits for its own
// mounted files before serving.
package servingcert

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Options say which Secret holds the certificate, which APIService gets
// its CA, and the name the aggregator dials.
type Options struct {
	// Secret is namespace/name of the Secret the rotator fills. Empty
	// turns rotation off: the certificate comes from elsewhere
	// (cert-manager, --tls-cert-file written by hand).
	Secret string
	// APIService is the name of the APIService whose caBundle is kept.
	APIService string
	// DNSName is the serving certificate's name: the Service as the
	// aggregator dials it, SERVICE.NAMESPACE.svc.
	DNSName string
	// ExtraDNSNames are further names in the certificate.
	ExtraDNSNames []string
	// CADuration and CertDuration are the validity of the CA and of the
	// serving certificate; Lookahead is how long before expiry a
	// certificate is renewed.
	CADuration, CertDuration, Lookahead time.Duration

	// controllerName tells rotators in one process apart (tests);
	// controller-runtime refuses two controllers of one name.
	controllerName string
}

// DefaultOptions are the rotation settings of config/default and the Helm
// chart: a ten-year CA, a one-year serving certificate renewed 90 days
// ahead (the rotator's defaults).
func DefaultOptions() Options {
	return Options{
		APIService:   "v1alpha1.inbox.herald.dev",
		DNSName:      "herald-inbox.herald-system.svc",
		CADuration:   10 * 365 * 24 * time.Hour,
		CertDuration: 365 * 24 * time.Hour,
		Lookahead:    90 * 24 * time.Hour,
	}
}

// AddFlags binds the options to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Secret, "cert-rotation-secret", o.Secret, "NAMESPACE/NAME of a Secret in which Herald generates and rotates its own serving CA and certificate, and injects the CA into the APIService's caBundle; the Secret must be mounted at the directory of --tls-cert-file. Empty: the certificate comes from elsewhere (cert-manager).")
	fs.StringVar(&o.APIService, "cert-rotation-apiservice", o.APIService, "APIService whose spec.caBundle the rotation keeps.")
	fs.StringVar(&o.DNSName, "cert-rotation-dns-name", o.DNSName, "Name in the generated serving certificate: the inbox Service as SERVICE.NAMESPACE.svc.")
	fs.StringSliceVar(&o.ExtraDNSNames, "cert-rotation-extra-dns-names", o.ExtraDNSNames, "Further names in the generated serving certificate.")
	fs.DurationVar(&o.CADuration, "cert-rotation-ca-duration", o.CADuration, "Validity of the generated CA.")
	fs.DurationVar(&o.CertDuration, "cert-rotation-cert-duration", o.CertDuration, "Validity of the generated serving certificate.")
	fs.DurationVar(&o.Lookahead, "cert-rotation-lookahead", o.Lookahead, "How long before expiry a certificate is renewed.")
}

// Enabled reports whether Herald manages the certificate itself.
func (o *Options) Enabled() bool { return o.Secret != "" }

// secretKey parses Secret.
func (o *Options) secretKey() (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(o.Secret, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("--cert-rotation-secret %q: want NAMESPACE/NAME", o.Secret)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// Validate checks the options; certFile and keyFile are where the server
// reads its certificate, which must be the mounted Secret's tls.crt and
// tls.key.
func (o *Options) Validate(certFile, keyFile string) error {
	if !o.Enabled() {
		return nil
	}
	var errs []error
	if _, err := o.secretKey(); err != nil {
		errs = append(errs, err)
	}
	if o.APIService == "" {
		errs = append(errs, errors.New("--cert-rotation-apiservice is required with --cert-rotation-secret"))
	}
	if o.DNSName == "" {
		errs = append(errs, errors.New("--cert-rotation-dns-name is required with --cert-rotation-secret"))
	}
	if certFile == "" || keyFile == "" || filepath.Dir(certFile) != filepath.Dir(keyFile) {
		errs = append(errs, errors.New("--cert-rotation-secret needs --tls-cert-file and --tls-private-key-file in the directory where the Secret is mounted"))
	}
	if o.CADuration <= o.Lookahead || o.CertDuration <= o.Lookahead {
		errs = append(errs, fmt.Errorf("--cert-rotation-ca-duration (%s) and --cert-rotation-cert-duration (%s) must exceed --cert-rotation-lookahead (%s)", o.CADuration, o.CertDuration, o.Lookahead))
	}
	return errors.Join(errs...)
}

// Start runs the rotator until ctx ends. The returned channel closes once
// the certificate files exist under the directory of certFile and the CA
// is in the APIService: then the server can start. A rotator that fails
// (it cannot write the Secret, the files never appear) sends its error on
// errc.
func (o *Options) Start(ctx context.Context, cfg *rest.Config, certFile, keyFile string) (ready <-chan struct{}, errc <-chan error, err error) {
	if err := o.Validate(certFile, keyFile); err != nil {
		return nil, nil, err
	}
	key, _ := o.secretKey()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "herald-inbox-cert-rotation"
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// The manager's own cache is not used for reads (the rotator
		// has its own, limited to the Secret's namespace); keep it to
		// that namespace too, so that nothing lists cluster-wide.
		Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{key.Namespace: {}}},
		Client: client.Options{Cache: &client.CacheOptions{
			DisableFor: []client.Object{&corev1.Secret{}},
		}},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("certificate rotation: %w", err)
	}
	isReady := make(chan struct{})
	if err := rotator.AddRotator(mgr, &rotator.CertRotator{
		SecretKey:              key,
		ControllerName:         o.controllerName,
		CertDir:                filepath.Dir(certFile),
		CertName:               filepath.Base(certFile),
		KeyName:                filepath.Base(keyFile),
		CAName:                 "herald-inbox-ca",
		CAOrganization:         "herald",
		DNSName:                o.DNSName,
		ExtraDNSNames:          o.ExtraDNSNames,
		IsReady:                isReady,
		Webhooks:               []rotator.WebhookInfo{{Name: o.APIService, Type: rotator.APIService}},
		FieldOwner:             "herald-inbox",
		RequireLeaderElection:  false,
		CaCertDuration:         o.CADuration,
		ServerCertDuration:     o.CertDuration,
		LookaheadInterval:      o.Lookahead,
		RotationCheckFrequency: time.Hour,
		ExtKeyUsages:           &[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return nil, nil, fmt.Errorf("certificate rotation: %w", err)
	}
	errs := make(chan error, 1)
	go func() {
		if err := mgr.Start(ctx); err != nil {
			errs <- fmt.Errorf("certificate rotation: %w", err)
		}
		close(errs)
	}()
	return isReady, errs, nil
}
