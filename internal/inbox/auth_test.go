package inbox_test

import (
	"crypto/tls"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
)

var _ = Describe("authentication and authorization", func() {
	It("refuses an unauthenticated caller with 401 at kube-apiserver", func() {
		anon := rest.AnonymousClientConfig(cfg)
		anon.BearerToken = "not-a-valid-token"
		c, err := client.New(anon, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		err = c.List(suiteCtx, &inboxv1.InboxItemList{}, client.InNamespace("default"))
		Expect(apierrors.IsUnauthorized(err)).To(BeTrue(), "got %v", err)
	})

	It("refuses a user without the inbox role with 403, for items and the stream", func() {
		mallory := userClient("mallory", "other-group")
		err := mallory.List(suiteCtx, &inboxv1.InboxItemList{}, client.InNamespace("default"))
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
		_, code := openStream("mallory", "/apis/inbox.herald.dev/v1alpha1/stream?watch=1", "", "other-group")
		Expect(code).To(Equal(http.StatusForbidden))
	})

	It("trusts identity headers only from the front proxy's client certificate", func() {
		direct := func(cert *tls.Certificate, user string) int {
			tr := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the test server's certificate is self-signed
			if cert != nil {
				tr.Certificates = []tls.Certificate{*cert}
			}
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tr}}
			req, err := http.NewRequest(http.MethodGet, "https://"+inboxAddr+"/apis/inbox.herald.dev/v1alpha1/namespaces/default/inboxitems", nil)
			Expect(err).NotTo(HaveOccurred())
			if user != "" {
				req.Header.Set("X-Remote-User", user)
				req.Header.Set("X-Remote-Group", usersGroup)
			}
			resp, err := hc.Do(req)
			Expect(err).NotTo(HaveOccurred())
			resp.Body.Close()
			return resp.StatusCode
		}
		// No credentials at all, and forged headers without a certificate.
		Expect(direct(nil, "")).To(Equal(http.StatusUnauthorized))
		Expect(direct(nil, "alice")).To(Equal(http.StatusUnauthorized))
		// A certificate from the front-proxy CA, but not for the allowed name.
		certPEM, keyPEM := clientCert("not-the-front-proxy")
		other, err := tls.X509KeyPair(certPEM, keyPEM)
		Expect(err).NotTo(HaveOccurred())
		Expect(direct(&other, "alice")).To(Equal(http.StatusUnauthorized))
		// The front proxy's own certificate is trusted.
		Expect(direct(&proxyCert, "alice")).To(Equal(http.StatusOK))
	})
})
