package servingcert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
	"github.com/herald-dev/herald/internal/dev/testutil/secretmount"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name              string
		edit              func(*Options)
		certFile, keyFile string
		wantErr           string
	}{
		{"off", func(o *Options) {}, "", "", ""},
		{"on", func(o *Options) { o.Secret = "ns/cert" }, "/c/tls.crt", "/c/tls.key", ""},
		{"secret without namespace", func(o *Options) { o.Secret = "cert" }, "/c/tls.crt", "/c/tls.key", "want NAMESPACE/NAME"},
		{"secret with two slashes", func(o *Options) { o.Secret = "ns/a/b" }, "/c/tls.crt", "/c/tls.key", "want NAMESPACE/NAME"},
		{"no cert file", func(o *Options) { o.Secret = "ns/cert" }, "", "", "--tls-cert-file"},
		{"files in two directories", func(o *Options) { o.Secret = "ns/cert" }, "/c/tls.crt", "/d/tls.key", "--tls-cert-file"},
		{"no apiservice", func(o *Options) { o.Secret = "ns/cert"; o.APIService = "" }, "/c/tls.crt", "/c/tls.key", "--cert-rotation-apiservice"},
		{"no dns name", func(o *Options) { o.Secret = "ns/cert"; o.DNSName = "" }, "/c/tls.crt", "/c/tls.key", "--cert-rotation-dns-name"},
		{"lookahead longer than the certificate", func(o *Options) { o.Secret = "ns/cert"; o.CertDuration = time.Hour }, "/c/tls.crt", "/c/tls.key", "must exceed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			tc.edit(&o)
			err := o.Validate(tc.certFile, tc.keyFile)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestRotatorFillsSecretAndCABundle runs the rotation against a real
// kube-apiserver: from an empty Secret and an APIService without a
// caBundle, it must produce a serving certificate for the Service's name,
// signed by the CA it puts into the APIService, and report ready once the
// files are where the server reads them.
func TestRotatorFillsSecretAndCABundle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	env, err := heraldenvtest.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := heraldenvtest.Start(env)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const ns = "herald-system"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "herald-inbox-serving-cert", Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": "v1alpha1.inbox.herald.dev"},
		"spec": map[string]any{
			"group": "inbox.herald.dev", "version": "v1alpha1", "groupPriorityMinimum": int64(1000), "versionPriority": int64(15),
			"service": map[string]any{"name": "herald-inbox", "namespace": ns, "port": int64(443)},
		},
	}}
	if err := c.Create(ctx, apiService); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	go secretmount.Mirror(ctx, c, types.NamespacedName{Namespace: ns, Name: "herald-inbox-serving-cert"}, dir)
	o := DefaultOptions()
	o.Secret = ns + "/herald-inbox-serving-cert"
	ready, errc, err := o.Start(ctx, cfg, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("rotation failed: %v", err)
	case <-ctx.Done():
		t.Fatal("the rotation was not ready within 2 minutes")
	}

	if err := c.Get(ctx, client.ObjectKeyFromObject(apiService), apiService); err != nil {
		t.Fatal(err)
	}
	caBundle, _, _ := unstructured.NestedString(apiService.Object, "spec", "caBundle")
	var secret corev1.Secret
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "herald-inbox-serving-cert"}, &secret); err != nil {
		t.Fatal(err)
	}
	if caBundle == "" {
		t.Fatal("the APIService has no caBundle")
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(secret.Data["ca.crt"]) {
		t.Fatal("the Secret's ca.crt is not a PEM certificate")
	}
	// caBundle is base64 in JSON; the typed client would decode it, the
	// unstructured one leaves it encoded.
	if want := b64(secret.Data["ca.crt"]); caBundle != want {
		t.Error("the APIService's caBundle is not the Secret's CA")
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatalf("the mounted files are not a key pair: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "herald-inbox.herald-system.svc", Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("the serving certificate does not verify for herald-inbox.herald-system.svc against the CA: %v", err)
	}
	if life := leaf.NotAfter.Sub(time.Now()); life < 300*24*time.Hour {
		t.Errorf("the serving certificate expires in %s, want about a year", life)
	}
	if block, _ := pem.Decode(secret.Data["ca.key"]); block == nil {
		t.Error("the Secret keeps no CA key, so the certificate could not be renewed")
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.key")); err != nil {
		t.Error("the mirror did not write every key of the Secret")
	}

	// Renewal: a rotator that finds the serving certificate within its
	// lookahead of expiry issues a new one from the same CA, and the
	// mounted files follow. (A lookahead longer than the certificate's
	// remaining life stands in for a year passing.)
	renew := DefaultOptions()
	renew.Secret = o.Secret
	renew.CertDuration = 800 * 24 * time.Hour
	renew.Lookahead = 400 * 24 * time.Hour
	renew.controllerName = "renewal"
	renewCtx, stopRenewal := context.WithCancel(ctx)
	defer stopRenewal()
	ready, errc, err = renew.Start(renewCtx, cfg, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("renewal failed: %v", err)
	case <-ctx.Done():
		t.Fatal("the renewal was not ready within 2 minutes")
	}
	// cert-controller numbers every certificate 1: tell them apart by
	// their bytes.
	var renewed *x509.Certificate
	NewWithT(t).Eventually(func() bool {
		p, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
		if err != nil {
			return false
		}
		renewed, err = x509.ParseCertificate(p.Certificate[0])
		return err == nil && !renewed.Equal(leaf)
	}).WithTimeout(time.Minute).Should(BeTrue(), "the mounted serving certificate was not renewed")
	if _, err := renewed.Verify(x509.VerifyOptions{DNSName: "herald-inbox.herald-system.svc", Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("the renewed certificate does not verify against the CA in the APIService: %v", err)
	}
	if life := time.Until(renewed.NotAfter); life < 700*24*time.Hour {
		t.Errorf("the renewed certificate expires in %s, want the renewal's 800 days", life)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(apiService), apiService); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := unstructured.NestedString(apiService.Object, "spec", "caBundle"); got != caBundle {
		t.Error("renewing the serving certificate changed the CA in the APIService")
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// FuzzSecretKey checks that --cert-rotation-secret is either refused or
// names exactly one namespace and name that give the flag back.
func FuzzSecretKey(f *testing.F) {
	for _, seed := range []string{"herald-system/herald-inbox-serving-cert", "a/b", "/b", "a/", "a/b/c", "", "/"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, flag string) {
		o := Options{Secret: flag}
		key, err := o.secretKey()
		if err != nil {
			return
		}
		if key.Namespace == "" || key.Name == "" || strings.Contains(key.Namespace, "/") || strings.Contains(key.Name, "/") {
			t.Fatalf("%q parsed into %+v", flag, key)
		}
		if key.Namespace+"/"+key.Name != flag {
			t.Fatalf("%q parsed into %+v, which does not give it back", flag, key)
		}
	})
}
