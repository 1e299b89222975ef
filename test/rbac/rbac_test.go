package rbac

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/dev/mailpit"
	"github.com/herald-dev/herald/internal/dev/providerfake"
	"github.com/herald-dev/herald/internal/dev/testutil/controllerproc"
	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
	"github.com/herald-dev/herald/internal/dev/testutil/kustomize"
	"github.com/herald-dev/herald/internal/dev/testutil/secretmount"
)

const (
	system         = "herald-system"
	controllerSA   = "herald-controller"
	inboxSA        = "herald-inbox"
	receiverSA     = "herald-receiver"
	servingSecret  = "herald-inbox-serving-cert"
	apiServiceName = "v1alpha1.inbox.herald.dev"
	tenant         = "tenant"
	user           = "alice"
)

func serviceAccountUser(name string) string { return "system:serviceaccount:" + system + ":" + name }

// heraldServiceAccounts are the identities of Herald's processes: a
// request of any of them that kube-apiserver refuses fails the suite.
var heraldServiceAccounts = []string{controllerSA, inboxSA, receiverSA}

// suite is the running install: a control plane with config/default's
// RBAC, and Herald's three processes as their ServiceAccounts.
type suite struct {
	t          *testing.T
	g          *WithT
	ctx        context.Context
	admin      client.Client
	adminCfg   *rest.Config
	bin        string
	kubeconfig map[string]string // ServiceAccount name -> impersonating kubeconfig
	auditLog   string
	installed  []*unstructured.Unstructured
	// meta is the WhatsApp case's provider fake, which also calls the
	// receiver back.
	meta *providerfake.Meta
}

// A channelCase is one channel of the suite: setup makes what the channel
// needs in the tenant's namespace (providers, Secrets, a receiver) and
// returns a check that the message reached the receiver. Adding a channel
// to Herald adds one entry here (and the recipient's address for it in
// TestServiceAccountsSuffice).
type channelCase struct {
	channel notifyv1.Channel
	setup   func(s *suite) (arrived func() error)
}

var channelCases = []channelCase{
	{notifyv1.ChannelInApp, func(s *suite) func() error {
		// The inbox read at the end of the suite is the receiver.
		return func() error { return nil }
	}},
	{notifyv1.ChannelEmail, func(s *suite) func() error {
		mp, err := mailpit.Start(mailpit.Options{})
		s.g.Expect(err).NotTo(HaveOccurred())
		s.t.Cleanup(func() { _ = mp.Close() })
		s.create(&notifyv1.NotificationProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "smtp", Namespace: tenant},
			Spec: notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelEmail, Default: true,
				SMTP: &notifyv1.SMTPProvider{Host: "localhost", Port: int32(mp.Port()), TLS: notifyv1.SMTPTLSNone, From: "herald@example.com"}},
		})
		return func() error {
			msgs, err := mp.Messages(s.ctx)
			if err == nil && len(msgs) == 0 {
				err = fmt.Errorf("no mail at Mailpit")
			}
			return err
		}
	}},
	{notifyv1.ChannelWebhook, func(s *suite) func() error {
		var got sync.Map
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got.Store(r.Header.Get("Idempotency-Key"), true)
		}))
		s.t.Cleanup(srv.Close)
		s.create(&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "webhook-signing", Namespace: tenant, Labels: map[string]string{notifyv1.LabelProviderSecret: "true"}},
			StringData: map[string]string{"key": "signing-key"},
		})
		s.create(&notifyv1.NotificationProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "hook", Namespace: tenant},
			Spec: notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelWebhook, Default: true,
				Webhook: &notifyv1.WebhookProvider{URL: srv.URL, SigningSecretRef: &notifyv1.SecretKeyReference{Name: "webhook-signing", Key: "key"}}},
		})
		return func() error {
			n := 0
			got.Range(func(any, any) bool { n++; return true })
			if n == 0 {
				return fmt.Errorf("no request at the webhook receiver")
			}
			return nil
		}
	}},
	{notifyv1.ChannelWhatsApp, func(s *suite) func() error {
		meta := providerfake.NewMeta()
		s.t.Cleanup(meta.Close)
		s.meta = meta
		s.providerSecret("meta", map[string]string{"token": meta.AccessToken, "appSecret": meta.AppSecret, "verifyToken": "rbac-suite"})
		// Opted in to receipts: the receiver step below calls back.
		s.create(&notifyv1.NotificationProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "cloud", Namespace: tenant},
			Spec: notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelWhatsApp, Default: true,
				WhatsApp: &notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppCloud, BaseURL: meta.URL, APIVersion: meta.APIVersion,
					PhoneNumberID: meta.PhoneNumberID, CredentialsSecretRef: &notifyv1.SecretReference{Name: "meta"},
					Receipts: &notifyv1.WhatsAppReceipts{
						AppSecretRef:   &notifyv1.SecretKeyReference{Name: "meta", Key: "appSecret"},
						VerifyTokenRef: &notifyv1.SecretKeyReference{Name: "meta", Key: "verifyToken"},
					}}},
		})
		return func() error {
			if len(meta.Messages()) == 0 {
				return fmt.Errorf("no message at the WhatsApp fake (rejections: %v)", meta.Rejections())
			}
			return nil
		}
	}},
	{notifyv1.ChannelSlack, func(s *suite) func() error {
		slack := providerfake.NewSlack()
		s.t.Cleanup(slack.Close)
		s.providerSecret("slack-bot", map[string]string{"token": slack.Token})
		s.create(&notifyv1.NotificationProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "slack", Namespace: tenant},
			Spec: notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelSlack, Default: true,
				Slack: &notifyv1.SlackProvider{BotTokenSecretRef: notifyv1.SecretKeyReference{Name: "slack-bot", Key: "token"}, BaseURL: slack.BaseURL()}},
		})
		return fakeGotMessage("Slack", slack.Server)
	}},
	{notifyv1.ChannelTeams, func(s *suite) func() error {
		teams := providerfake.NewTeams()
		s.t.Cleanup(teams.Close)
		// The room's webhook URL is a credential: the recipient names
		// this opted-in Secret.
		s.providerSecret(teamsRoomSecret, map[string]string{"url": teams.WebhookURL("ops")})
		s.create(&notifyv1.NotificationProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "teams", Namespace: tenant},
			Spec:       notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelTeams, Default: true, Teams: &notifyv1.TeamsProvider{}},
		})
		return fakeGotMessage("Teams", teams.Server)
	}},
	{notifyv1.ChannelTelegram, func(s *suite) func() error {
		telegram := providerfake.NewTelegram()
		s.t.Cleanup(telegram.Close)
		s.providerSecret("telegram-bot", map[string]string{"token": telegram.Token})
		s.create(&notifyv1.NotificationProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "telegram", Namespace: tenant},
			Spec: notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelTelegram, Default: true,
				Telegram: &notifyv1.TelegramProvider{BotTokenSecretRef: notifyv1.SecretKeyReference{Name: "telegram-bot", Key: "token"}, BaseURL: telegram.BaseURL()}},
		})
		return fakeGotMessage("Telegram", telegram.Server)
	}},
}

// teamsRoomSecret holds the recipient's Teams webhook URL.
const teamsRoomSecret = "teams-room"

// fakeGotMessage checks that a chat provider fake recorded a message.
func fakeGotMessage(name string, fake *providerfake.Server) func() error {
	return func() error {
		if len(fake.Messages()) == 0 {
			return fmt.Errorf("no message at the %s fake (rejections: %v)", name, fake.Rejections())
		}
		return nil
	}
}

// TestServiceAccountsSuffice runs the whole of Herald as its
// ServiceAccounts with the RBAC config/default installs, then upgrades it
// under load, and fails on any request kube-apiserver refused them.
func TestServiceAccountsSuffice(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and Herald's processes")
	}
	s := start(t)

	// A refused request may leave no other trace than a log line (a
	// failed watch is retried forever): read the audit log at the end,
	// whatever else failed.
	defer s.expectNothingForbidden()

	s.startInbox()
	receiverURL := s.startReceiver()
	controller := s.startController()

	s.create(&notifyv1.Recipient{
		ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: tenant},
		Spec: notifyv1.RecipientSpec{Username: user, Email: user + "@example.com", Phone: "+4915112345678",
			Slack:    &notifyv1.SlackAddress{ChannelID: "C024BE91L"},
			Teams:    &notifyv1.TeamsAddress{WebhookURLSecretRef: notifyv1.SecretKeyReference{Name: teamsRoomSecret, Key: "url"}},
			Telegram: &notifyv1.TelegramAddress{ChatID: "-1001234567890"}},
	})

	// The schedule fires at the next full minute: create it first, so
	// that the wait overlaps with the channels'.
	s.create(&notifyv1.NotificationSchedule{
		ObjectMeta: metav1.ObjectMeta{Name: "every-minute", Namespace: tenant},
		Spec: notifyv1.NotificationScheduleSpec{
			Schedule: "* * * * *",
			Notification: notifyv1.NotificationTemplateSpec{Spec: notifyv1.NotificationSpec{
				Title: "Scheduled", Message: "from a schedule",
				Audience: notifyv1.Audience{Users: []string{user}}, Channels: []notifyv1.Channel{notifyv1.ChannelInApp},
			}},
		},
	})

	// Every channel delivers
	t.Log("every channel delivers")
	{
		arrived := map[notifyv1.Channel]func() error{}
		for _, c := range channelCases {
			arrived[c.channel] = c.setup(s)
			s.notification(strings.ToLower(string(c.channel)), c.channel, nil)
		}
		for _, c := range channelCases {
			s.waitDelivered(t, strings.ToLower(string(c.channel)))
			if err := arrived[c.channel](); err != nil {
				t.Errorf("%s: %v", c.channel, err)
			}
		}
	}

	// The receiver records a receipt from a signed status callback
	t.Log("the receiver records a receipt from a signed Meta status callback")
	{
		s.receiptThroughReceiver(t, receiverURL)
	}

	// A schedule and an event rule create notifications
	t.Log("a schedule and an event rule create notifications")
	{
		s.create(&notifyv1.EventRule{
			ObjectMeta: metav1.ObjectMeta{Name: "crashloop", Namespace: tenant},
			Spec: notifyv1.EventRuleSpec{
				Match: notifyv1.EventMatch{Types: []string{"Warning"}, Reasons: []string{"BackOff"}, InvolvedKinds: []string{"Pod"}},
				Notification: notifyv1.NotificationTemplateSpec{Spec: notifyv1.NotificationSpec{
					Title: "Crash loop", Message: "a pod crash-loops",
					Audience: notifyv1.Audience{Users: []string{user}}, Channels: []notifyv1.Channel{notifyv1.ChannelInApp},
				}},
			},
		})
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: tenant},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web"}}},
		}
		s.create(pod)
		s.create(&corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "web.backoff", Namespace: tenant},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: tenant, Name: "web", UID: pod.UID},
			Type:           "Warning", Reason: "BackOff", Message: "Back-off restarting failed container",
			FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1,
			Source: corev1.EventSource{Component: "kubelet"},
		})
		for _, label := range []string{notifyv1.LabelSchedule + "=every-minute", notifyv1.LabelEventRule + "=crashloop"} {
			name := s.waitCreatedBy(t, label)
			s.waitDelivered(t, name)
		}
	}

	// The inbox serves through kube-apiserver with the certificate herald made
	t.Log("the inbox serves through kube-apiserver with the certificate Herald made")
	{
		alice := s.userClient(user)
		var items inboxv1.InboxItemList
		// Three in-app items: the channel case, the schedule's and the
		// event rule's.
		s.eventually(t, 2*time.Minute, func() error {
			if err := alice.List(s.ctx, &items, client.InNamespace(tenant)); err != nil {
				return err
			}
			if len(items.Items) < 3 {
				return fmt.Errorf("%d inbox items", len(items.Items))
			}
			return nil
		})
		item := items.Items[0]
		item.Status.Read = true
		if err := alice.Status().Update(s.ctx, &item); err != nil {
			t.Fatalf("marking an inbox item read as %s: %v", user, err)
		}
		s.eventually(t, time.Minute, func() error {
			var got inboxv1.InboxItem
			if err := alice.Get(s.ctx, client.ObjectKeyFromObject(&item), &got); err != nil {
				return err
			}
			if !got.Status.Read {
				return fmt.Errorf("not read yet")
			}
			return nil
		})
	}

	// An upgrade under load loses no delivery
	t.Log("an upgrade under load loses no delivery")
	{
		controller = s.upgradeUnderLoad(t, controller)
	}
}

func start(t *testing.T) *suite {
	g := NewWithT(t)
	log.SetLogger(logr.Discard())
	root, err := heraldenvtest.RepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	dir := t.TempDir()

	// The production binary, built from this tree (bin/ may hold another
	// worktree's).
	bin := filepath.Join(dir, "herald")
	build := exec.Command("go", "build", "-tags", "nodev", "-o", bin, "./cmd/herald")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags nodev ./cmd/herald: %v\n%s", err, out)
	}

	env, err := heraldenvtest.New()
	g.Expect(err).NotTo(HaveOccurred())
	// Herald's CRDs come from config/default below, like everything else.
	env.CRDDirectoryPaths = nil
	_, err = heraldenvtest.ConfigureFrontProxy(env, dir)
	g.Expect(err).NotTo(HaveOccurred())
	policy := filepath.Join(dir, "audit-policy.yaml")
	g.Expect(os.WriteFile(policy, []byte(auditPolicy), 0o600)).To(Succeed())
	auditLog := filepath.Join(dir, "audit.log")
	args := env.ControlPlane.GetAPIServer().Configure()
	args.Set("audit-policy-file", policy)
	args.Set("audit-log-path", auditLog)
	// config/default below installs the CRDs' admission policies too.
	cfg, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	cfg.QPS, cfg.Burst = -1, 0

	admin, err := client.New(cfg, client.Options{Scheme: scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	t.Cleanup(cancel)
	s := &suite{t: t, g: g, ctx: ctx, admin: admin, adminCfg: cfg, bin: bin, auditLog: auditLog, kubeconfig: map[string]string{}}

	// What config/default installs, but for the Deployments (no nodes
	// here: the processes below stand in for their pods) and the inbox
	// Service (an ExternalName to this machine stands in for it).
	objs, err := kustomize.Render(filepath.Join(root, "config", "default"))
	g.Expect(err).NotTo(HaveOccurred())
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment", "PodDisruptionBudget", "Service":
			continue
		}
		s.installed = append(s.installed, o)
	}
	// kubectl applies Namespaces and CRDs first, too.
	first := func(o *unstructured.Unstructured) int {
		switch o.GetKind() {
		case "Namespace":
			return 0
		case "CustomResourceDefinition":
			return 1
		}
		return 2
	}
	slices.SortStableFunc(s.installed, func(a, b *unstructured.Unstructured) int { return first(a) - first(b) })
	s.apply("herald-install", s.installed)
	s.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tenant}})

	// The processes' identities: the admin user impersonating each
	// ServiceAccount, which leaves them the ServiceAccount's rights only.
	user, err := env.AddUser(envtestUser("herald-rbac-admin"), nil)
	g.Expect(err).NotTo(HaveOccurred())
	base, err := user.KubeConfig()
	g.Expect(err).NotTo(HaveOccurred())
	for _, sa := range heraldServiceAccounts {
		kc, err := clientcmd.Load(base)
		g.Expect(err).NotTo(HaveOccurred())
		for _, ai := range kc.AuthInfos {
			ai.Impersonate = serviceAccountUser(sa)
			ai.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + system, "system:authenticated"}
		}
		file := filepath.Join(dir, sa+".kubeconfig")
		g.Expect(clientcmd.WriteToFile(*kc, file)).To(Succeed())
		s.kubeconfig[sa] = file
	}
	return s
}

// startController runs `herald controller` as its ServiceAccount, with
// leader election as config/manager runs it.
func (s *suite) startController() *controllerproc.Process {
	p, err := controllerproc.StartBinary(s.bin, s.kubeconfig[controllerSA], "controller",
		"--leader-elect", "--leader-election-namespace="+system,
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--zap-log-level=error",
		"--egress-allow=127.0.0.0/8,::1")
	s.g.Expect(err).NotTo(HaveOccurred())
	s.t.Cleanup(p.Kill)
	return p
}

// startInbox runs `herald apiserver` as its ServiceAccount with the
// certificate rotation config/apiserver turns on, stands in for the
// kubelet's mount of the rotation's Secret, and points the inbox Service
// at the process.
func (s *suite) startInbox() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	s.g.Expect(err).NotTo(HaveOccurred())
	port := l.Addr().(*net.TCPAddr).Port
	s.g.Expect(l.Close()).To(Succeed())

	certDir := s.t.TempDir()
	go secretmount.Mirror(s.ctx, s.admin, types.NamespacedName{Namespace: system, Name: servingSecret}, certDir)
	kc := s.kubeconfig[inboxSA]
	p, err := controllerproc.StartBinary(s.bin, kc, "apiserver",
		fmt.Sprintf("--secure-port=%d", port), "--bind-address=127.0.0.1",
		"--kubeconfig="+kc, "--authentication-kubeconfig="+kc, "--authorization-kubeconfig="+kc,
		"--tls-cert-file="+filepath.Join(certDir, "tls.crt"), "--tls-private-key-file="+filepath.Join(certDir, "tls.key"),
		"--cert-rotation-secret="+system+"/"+servingSecret)
	s.g.Expect(err).NotTo(HaveOccurred())
	s.t.Cleanup(p.Kill)

	s.create(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "herald-inbox", Namespace: system},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "https", Port: int32(port), TargetPort: intstr.FromInt32(int32(port))}}},
	})
	// The APIService from config/default, on the stand-in's port.
	apiService := &unstructured.Unstructured{}
	apiService.SetAPIVersion("apiregistration.k8s.io/v1")
	apiService.SetKind("APIService")
	apiService.SetName(apiServiceName)
	s.g.Expect(unstructured.SetNestedField(apiService.Object, int64(port), "spec", "service", "port")).To(Succeed())
	s.g.Expect(s.admin.Patch(s.ctx, apiService, client.Apply, client.FieldOwner("herald-rbac-test"), client.ForceOwnership)).To(Succeed())
}

// startReceiver runs `herald receiver` as its ServiceAccount on a loopback
// port (the Service and Ingress in front of it are not needed to prove its
// RBAC) and returns its base URL.
func (s *suite) startReceiver() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	s.g.Expect(err).NotTo(HaveOccurred())
	addr := l.Addr().String()
	s.g.Expect(l.Close()).To(Succeed())
	p, err := controllerproc.StartBinary(s.bin, s.kubeconfig[receiverSA], "receiver",
		"--bind-address="+addr, "--public-url=http://"+addr,
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--zap-log-level=error")
	s.g.Expect(err).NotTo(HaveOccurred())
	s.t.Cleanup(p.Kill)
	return "http://" + addr
}

// receiptThroughReceiver has the Meta fake call the receiver back, signed,
// for the message the WhatsApp case sent, until the receiver answers 200
// (before its caches hold the delivery it answers 404, and before it
// listens the call fails), and checks that the receipt reached the
// delivery's status, which the receiver writes as its ServiceAccount.
func (s *suite) receiptThroughReceiver(t *testing.T, receiverURL string) {
	t.Helper()
	var delivery notifyv1.ChannelDelivery
	s.eventually(t, time.Minute, func() error {
		var list notifyv1.ChannelDeliveryList
		if err := s.admin.List(s.ctx, &list, client.InNamespace(tenant)); err != nil {
			return err
		}
		for _, d := range list.Items {
			if d.Spec.Channel == notifyv1.ChannelWhatsApp && d.Status.ProviderMessageID != "" {
				delivery = d
				return nil
			}
		}
		return fmt.Errorf("no WhatsApp delivery with a provider message ID")
	})
	callback := receiverURL + "/receipts/meta/" + tenant + "/cloud"
	status := providerfake.MetaStatus{MessageID: delivery.Status.ProviderMessageID, Status: "delivered"}
	s.eventually(t, time.Minute, func() error {
		res, err := s.meta.SendStatus(s.ctx, callback, status)
		if err != nil {
			return err
		}
		if res.Status != http.StatusOK {
			return fmt.Errorf("the receiver answered %d: %s", res.Status, res.Body)
		}
		return nil
	})
	s.eventually(t, time.Minute, func() error {
		var got notifyv1.ChannelDelivery
		if err := s.admin.Get(s.ctx, client.ObjectKeyFromObject(&delivery), &got); err != nil {
			return err
		}
		if got.Status.Receipt == nil || got.Status.Receipt.State != notifyv1.ReceiptDelivered {
			return fmt.Errorf("receipt %+v, want delivered", got.Status.Receipt)
		}
		return nil
	})
}

// providerSecret creates a Secret in the tenant's namespace that opted in
// to provider use.
func (s *suite) providerSecret(name string, data map[string]string) {
	s.create(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: tenant, Labels: map[string]string{notifyv1.LabelProviderSecret: "true"}},
		StringData: data,
	})
}

func (s *suite) notification(name string, ch notifyv1.Channel, mutate func(*notifyv1.NotificationSpec)) {
	n := &notifyv1.Notification{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: tenant},
		Spec: notifyv1.NotificationSpec{
			Title: "RBAC suite", Message: "via " + string(ch),
			Audience: notifyv1.Audience{Users: []string{user}}, Channels: []notifyv1.Channel{ch},
		},
	}
	if mutate != nil {
		mutate(&n.Spec)
	}
	s.create(n)
}

func (s *suite) waitDelivered(t *testing.T, name string) {
	t.Helper()
	s.eventually(t, 2*time.Minute, func() error {
		var n notifyv1.Notification
		if err := s.admin.Get(s.ctx, types.NamespacedName{Namespace: tenant, Name: name}, &n); err != nil {
			return err
		}
		if n.Status.Phase != notifyv1.NotificationDelivered {
			return fmt.Errorf("notification %s is %q: %+v", name, n.Status.Phase, n.Status.Conditions)
		}
		return nil
	})
}

// waitCreatedBy waits for a notification with the label and returns its
// name.
func (s *suite) waitCreatedBy(t *testing.T, label string) string {
	t.Helper()
	key, value, _ := strings.Cut(label, "=")
	var name string
	// A schedule fires at the next minute.
	s.eventually(t, 2*time.Minute, func() error {
		var list notifyv1.NotificationList
		if err := s.admin.List(s.ctx, &list, client.InNamespace(tenant), client.MatchingLabels{key: value}); err != nil {
			return err
		}
		if len(list.Items) == 0 {
			return fmt.Errorf("no notification labelled %s", label)
		}
		name = list.Items[0].Name
		return nil
	})
	return name
}

// eventually waits for f to succeed. A refused request of Herald's
// ServiceAccounts usually means f never will: the wait then ends at once,
// and the deferred audit check names the requests.
func (s *suite) eventually(t *testing.T, limit time.Duration, f func() error) {
	t.Helper()
	var checked time.Time
	NewWithT(t).Eventually(func() error {
		if time.Since(checked) > 2*time.Second {
			checked = time.Now()
			if refused := s.refused(); len(refused) > 0 {
				return StopTrying(fmt.Sprintf("kube-apiserver refused %d requests of Herald's ServiceAccounts", len(refused)))
			}
		}
		return f()
	}).WithContext(s.ctx).WithTimeout(limit).WithPolling(200 * time.Millisecond).Should(Succeed())
}

// refused returns the requests of Herald's ServiceAccounts that
// kube-apiserver refused so far.
func (s *suite) refused() []string {
	data, err := os.ReadFile(s.auditLog)
	if err != nil {
		s.t.Fatalf("reading the audit log: %v", err)
	}
	var users []string
	for _, sa := range heraldServiceAccounts {
		users = append(users, serviceAccountUser(sa))
	}
	refused, err := forbidden(bytes.NewReader(data), users)
	if err != nil {
		s.t.Fatal(err)
	}
	return refused
}

func (s *suite) create(o client.Object) {
	s.t.Helper()
	s.g.Expect(s.admin.Create(s.ctx, o)).To(Succeed(), "creating %T %s", o, o.GetName())
}

// apply server-side applies objs as fieldManager, as `kubectl apply
// --server-side` does.
func (s *suite) apply(fieldManager string, objs []*unstructured.Unstructured) {
	s.t.Helper()
	for _, o := range objs {
		err := s.admin.Patch(s.ctx, o.DeepCopy(), client.Apply, client.FieldOwner(fieldManager), client.ForceOwnership)
		s.g.Expect(err).NotTo(HaveOccurred(), "applying %s %s", o.GetKind(), o.GetName())
	}
}

// userClient is a person's client: the admin impersonating them.
func (s *suite) userClient(name string) client.Client {
	cfg := rest.CopyConfig(s.adminCfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: name, Groups: []string{"system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: scheme()})
	s.g.Expect(err).NotTo(HaveOccurred())
	return c
}

// expectNothingForbidden fails the test with every request of Herald's
// ServiceAccounts that kube-apiserver refused.
func (s *suite) expectNothingForbidden() {
	refused := s.refused()
	for _, r := range refused {
		s.t.Errorf("forbidden: %s", r)
	}
	if len(refused) > 0 {
		s.t.Errorf("config/rbac, config/apiserver or config/receiver lacks a rule: %d requests of Herald's ServiceAccounts were refused", len(refused))
	}
	// The log must hold the ServiceAccounts' requests, or the check
	// above proved nothing.
	data, err := os.ReadFile(s.auditLog)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, sa := range heraldServiceAccounts {
		if !bytes.Contains(data, []byte(`"impersonatedUser":{"username":"`+serviceAccountUser(sa)+`"`)) {
			s.t.Errorf("the audit log has no request of %s", sa)
		}
	}
}

func scheme() *runtime.Scheme {
	sc := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, notifyv1.AddToScheme, inboxv1.AddToScheme} {
		if err := add(sc); err != nil {
			panic(err)
		}
	}
	return sc
}

func envtestUser(name string) envtest.User {
	return envtest.User{Name: name, Groups: []string{"system:masters"}}
}

// loadSize is how many webhook deliveries the upgrade runs through.
const loadSize = 150

// upgradeUnderLoad does what docs/install.md says an upgrade is: with
// deliveries in flight, it server-side applies the next version's CRDs and
// RBAC (here config/default again, under another field manager, as a new
// release's `kubectl apply --server-side` or `helm upgrade` would) while the
// controller runs, then replaces the controller (SIGTERM, as a rolling
// update does, and a new process). Every delivery must end Succeeded and
// reach the receiver. It returns the new controller.
func (s *suite) upgradeUnderLoad(t *testing.T, old *controllerproc.Process) *controllerproc.Process {
	var mu sync.Mutex
	received := map[string]int{}
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A slow receiver (a fifth of a second a request, about six
		// seconds for the load with the default five webhook workers)
		// keeps the load in flight through the upgrade.
		time.Sleep(200 * time.Millisecond)
		mu.Lock()
		received[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
	}))
	t.Cleanup(sink.Close)
	s.create(&notifyv1.NotificationProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "load", Namespace: tenant},
		Spec: notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelWebhook,
			Webhook: &notifyv1.WebhookProvider{URL: sink.URL}},
	})
	distinct := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(received)
	}
	for i := 0; i < loadSize; i++ {
		s.notification(fmt.Sprintf("load-%03d", i), notifyv1.ChannelWebhook, func(n *notifyv1.NotificationSpec) {
			n.Providers = &notifyv1.ChannelProviders{Webhook: "load"}
		})
	}
	s.eventually(t, 2*time.Minute, func() error {
		if distinct() == 0 {
			return fmt.Errorf("nothing delivered yet")
		}
		return nil
	})

	var crdsAndRBAC []*unstructured.Unstructured
	for _, o := range s.installed {
		switch o.GetKind() {
		case "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount":
			crdsAndRBAC = append(crdsAndRBAC, o)
		}
	}
	s.apply("herald-upgrade", crdsAndRBAC)
	atUpgrade := distinct()
	if !old.Stop(30 * time.Second) {
		t.Error("the controller did not stop within 30s of SIGTERM")
	}
	atRestart := distinct()
	next := s.startController()

	var ids []string
	s.eventually(t, 5*time.Minute, func() error {
		var list notifyv1.ChannelDeliveryList
		if err := s.admin.List(s.ctx, &list, client.InNamespace(tenant)); err != nil {
			return err
		}
		ids = ids[:0]
		pending := 0
		for _, d := range list.Items {
			if d.Spec.Provider != "load" {
				continue
			}
			if d.Status.Phase != notifyv1.DeliverySucceeded {
				pending++
			}
			ids = append(ids, string(d.UID))
		}
		if len(ids) != loadSize || pending > 0 {
			return fmt.Errorf("%d of %d load deliveries exist, %d not Succeeded", len(ids), loadSize, pending)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	duplicates := 0
	for _, id := range ids {
		switch n := received[id]; {
		case n == 0:
			t.Errorf("delivery %s is Succeeded but never reached the receiver", id)
		case n > 1:
			duplicates += n - 1
		}
	}
	if len(received) != loadSize {
		t.Errorf("the receiver got %d distinct deliveries, want %d", len(received), loadSize)
	}
	if atRestart >= loadSize {
		t.Errorf("the load was delivered before the controller was replaced: the upgrade ran with nothing in flight")
	}
	t.Logf("upgrade under load: %d of %d delivered when the CRDs and RBAC were re-applied, %d when the controller stopped; all %d delivered, %d repeated sends",
		atUpgrade, loadSize, atRestart, loadSize, duplicates)
	return next
}
