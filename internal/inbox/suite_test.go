package inbox_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/dev"
	"github.com/herald-dev/herald/internal/dev/pki"
	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
	"github.com/herald-dev/herald/internal/inbox/apiserver"
)

// One control plane and one inbox server serve the whole package. The
// inbox server runs in this process and is reached the way a cluster
// reaches it: through kube-apiserver's aggregator (an APIService and an
// ExternalName Service pointing at 127.0.0.1), which authenticates and
// authorizes each caller with RBAC and forwards their identity in
// front-proxy headers over a client certificate the test generated.

const (
	// usersGroup is bound to herald-inbox-user in the tests (production
	// binds system:authenticated); a user outside it is forbidden.
	usersGroup = "herald-users"
	heartbeat  = 200 * time.Millisecond
	// requestTimeout is kube-apiserver's --request-timeout (60s by default).
	requestTimeout = 5 * time.Second
)

var (
	testEnv     *envtest.Environment
	cfg         *rest.Config
	k8sClient   client.Client
	scheme      *runtime.Scheme
	suiteCtx    context.Context
	cancelSuite context.CancelFunc
	serverDone  chan error
	inboxAddr   string // host:port of the in-process inbox server
	proxyCert   tls.Certificate
	proxyCA     *pki.KeyPair
)

func TestInbox(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a control plane")
	}
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(20 * time.Second)
	SetDefaultEventuallyPollingInterval(20 * time.Millisecond)
	RunSpecs(t, "Inbox aggregated API suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	klog.SetLogger(logf.Log.WithName("klog"))
	suiteCtx, cancelSuite = context.WithCancel(context.Background())
	dir := GinkgoT().TempDir()

	By("starting kube-apiserver with the front proxy configured")
	var err error
	testEnv, err = heraldenvtest.New()
	Expect(err).NotTo(HaveOccurred())
	scheme = testEnv.Scheme
	Expect(inboxv1.AddToScheme(scheme)).To(Succeed())
	fp, err := heraldenvtest.ConfigureFrontProxy(testEnv, dir)
	Expect(err).NotTo(HaveOccurred())
	proxyCA = fp.CA
	proxyCert, err = fp.Client.TLS()
	Expect(err).NotTo(HaveOccurred())
	args := testEnv.ControlPlane.GetAPIServer().Configure()
	// Short, so that a test can show that ?watch=1 keeps a stream past it.
	args.Set("request-timeout", requestTimeout.String())
	cfg, err = heraldenvtest.Start(testEnv)
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	By("starting the inbox server on a random local port")
	kubeconfigFile, adminConfig, err := heraldenvtest.AdminKubeconfig(testEnv, "herald-inbox", dir)
	Expect(err).NotTo(HaveOccurred())

	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	port := l.Addr().(*net.TCPAddr).Port
	inboxAddr = l.Addr().String()
	o := apiserver.NewOptions()
	o.SecureServing.Listener = l
	o.SecureServing.BindAddress = net.ParseIP("127.0.0.1")
	o.SecureServing.BindPort = port
	// TokenReviews, SubjectAccessReviews and the front-proxy CA (read
	// from kube-system/extension-apiserver-authentication, which
	// kube-apiserver writes) all come through the admin kubeconfig.
	o.Authentication.RemoteKubeConfigFile = kubeconfigFile
	o.Authorization.RemoteKubeConfigFile = kubeconfigFile
	// RBAC changes in a test must show at once.
	o.Authorization.AllowCacheTTL = time.Millisecond
	o.Authorization.DenyCacheTTL = time.Millisecond
	o.RESTConfig = adminConfig
	o.Heartbeat = heartbeat
	o.Logger = logf.Log.WithName("inbox")
	srv, err := o.NewServer()
	Expect(err).NotTo(HaveOccurred())
	serverDone = make(chan error, 1)
	go func() { serverDone <- srv.Run(suiteCtx) }()

	By("registering the APIService")
	Expect(k8sClient.Create(suiteCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: dev.InboxNamespace}})).To(Succeed())
	registration := dev.InboxRegistration(port, nil)
	for _, o := range registration {
		Expect(k8sClient.Create(suiteCtx, o)).To(Succeed())
	}
	apiService := registration[1].(*unstructured.Unstructured)
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(apiService), apiService)).To(Succeed())
		conds, _, _ := unstructured.NestedSlice(apiService.Object, "status", "conditions")
		var available bool
		for _, c := range conds {
			m := c.(map[string]any)
			if m["type"] == "Available" && m["status"] == "True" {
				available = true
			}
		}
		g.Expect(available).To(BeTrue(), "APIService conditions: %v", conds)
	}).Should(Succeed())

	By("granting the shipped herald-inbox-user ClusterRole to " + usersGroup)
	root, err := heraldenvtest.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
	data, err := os.ReadFile(filepath.Join(root, "config", "apiserver", "user_clusterrole.yaml"))
	Expect(err).NotTo(HaveOccurred())
	var role rbacv1.ClusterRole
	Expect(yaml.Unmarshal(data, &role)).To(Succeed())
	Expect(k8sClient.Create(suiteCtx, &role)).To(Succeed())
	Expect(k8sClient.Create(suiteCtx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "herald-inbox-user-test"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "Group", Name: usersGroup}},
	})).To(Succeed())
	// RBAC reaches the authorizer's cache asynchronously.
	Eventually(func() error {
		return userClient("probe").List(suiteCtx, &inboxv1.InboxItemList{}, client.InNamespace("default"))
	}).Should(Succeed())
})

var _ = AfterSuite(func() {
	if cancelSuite != nil {
		cancelSuite()
	}
	if serverDone != nil {
		Eventually(serverDone, 30*time.Second).Should(Receive())
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// userConfig returns a config that acts as user (through impersonation by
// the envtest admin), in usersGroup unless groups say otherwise.
func userConfig(user string, groups ...string) *rest.Config {
	c := rest.CopyConfig(cfg)
	if groups == nil {
		groups = []string{usersGroup}
	}
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return c
}

func userClient(user string, groups ...string) client.WithWatch {
	c, err := client.NewWithWatch(userConfig(user, groups...), client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	return c
}

// apiURL joins cfg.Host (which ends with '/') and path: "//apis/..." gets
// a plain 404 from kube-apiserver.
func apiURL(path string) string {
	return strings.TrimSuffix(cfg.Host, "/") + path
}

func userHTTP(user string, groups ...string) *http.Client {
	c, err := rest.HTTPClientFor(userConfig(user, groups...))
	Expect(err).NotTo(HaveOccurred())
	return c
}

var nsCounter atomic.Int32

func newNamespace() string {
	name := fmt.Sprintf("inbox-%d", nsCounter.Add(1))
	Expect(k8sClient.Create(suiteCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}

// createItem creates an in-app delivery for username and makes it visible
// (phase Succeeded), as the in-app delivery reconciler would.
func createItem(ns, name, username string, mutate func(*notifyv1.ChannelDelivery)) *notifyv1.ChannelDelivery {
	d := newDelivery(ns, name, username)
	if mutate != nil {
		mutate(d)
	}
	Expect(k8sClient.Create(suiteCtx, d)).To(Succeed())
	if d.Status.Phase == "" {
		d.Status.Phase = notifyv1.DeliverySucceeded
		now := metav1.NowMicro()
		d.Status.CompletionTime = &now
		d.Status.Attempts = 1
	}
	Expect(k8sClient.Status().Update(suiteCtx, d)).To(Succeed())
	return d
}

func newDelivery(ns, name, username string) *notifyv1.ChannelDelivery {
	return &notifyv1.ChannelDelivery{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Labels: map[string]string{
				notifyv1.LabelNotification: "n-" + name,
				notifyv1.LabelChannel:      string(notifyv1.ChannelInApp),
				notifyv1.LabelRecipient:    username,
			},
		},
		Spec: notifyv1.ChannelDeliverySpec{
			Notification: "n-" + name,
			Channel:      notifyv1.ChannelInApp,
			Recipient:    notifyv1.RecipientSnapshot{Name: username, Username: username},
			Content: notifyv1.RenderedContent{
				Type:     notifyv1.TypeInformational,
				Category: "deployments",
				Title:    "Title of " + name,
				Message:  "Message of " + name,
			},
		},
	}
}

func itemNames(list *inboxv1.InboxItemList) []string {
	var out []string
	for _, it := range list.Items {
		out = append(out, it.Namespace+"/"+it.Name)
	}
	return out
}

func conditionTrue(conds []metav1.Condition, t string) bool {
	return meta.IsStatusConditionTrue(conds, t)
}

// clientCert issues a client certificate with common name cn from the
// front-proxy CA.
func clientCert(cn string) (certPEM, keyPEM []byte) {
	kp, err := proxyCA.Client(cn)
	Expect(err).NotTo(HaveOccurred())
	return kp.CertPEM, kp.KeyPEM
}
