package factory

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/egress"
	"github.com/herald-dev/herald/internal/channel/email"
	"github.com/herald-dev/herald/internal/channel/webhook"
	"github.com/herald-dev/herald/internal/channel/whatsapp"
)

const ns = "team-a"

func secret(name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		Labels: map[string]string{notifyv1.LabelProviderSecret: "true"}}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

// caPEM is a real certificate, which email.New insists on.
func caPEM(t *testing.T) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}

func provider(spec notifyv1.NotificationProviderSpec) *notifyv1.NotificationProvider {
	return &notifyv1.NotificationProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p", Generation: 3},
		Spec:       spec,
	}
}

func smtp(mod func(*notifyv1.SMTPProvider)) *notifyv1.NotificationProvider {
	s := &notifyv1.SMTPProvider{Host: "smtp.example.com", Port: 587, From: "Herald <herald@example.com>"}
	if mod != nil {
		mod(s)
	}
	return provider(notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelEmail, SMTP: s})
}

func hook(mod func(*notifyv1.WebhookProvider)) *notifyv1.NotificationProvider {
	w := &notifyv1.WebhookProvider{URL: "https://hooks.example.com/x"}
	if mod != nil {
		mod(w)
	}
	return provider(notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelWebhook, Webhook: w})
}

func wa(w notifyv1.WhatsAppProvider) *notifyv1.NotificationProvider {
	return provider(notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelWhatsApp, WhatsApp: &w})
}

var (
	creds     = &notifyv1.SecretReference{Name: "creds"}
	twilioSID = "AC" + strings.Repeat("0", 32)
)

func TestBuild(t *testing.T) {
	ca := caPEM(t)
	secrets := []client.Object{
		secret("smtp-auth", map[string]string{"username": "u", "password": "p"}),
		secret("smtp-ca", map[string]string{"ca.crt": ca}),
		secret("smtp-nopass", map[string]string{"username": "u"}),
		secret("signing", map[string]string{"key": "k"}),
		secret("cloud", map[string]string{"token": "EAAx"}),
		secret("twilio", map[string]string{"authToken": "tok"}),
		secret("waha", map[string]string{"apiKey": "k"}),
		secret("empty", nil),
		secret("meta-webhook", map[string]string{"appSecret": "a", "verifyToken": "v"}),
	}
	other := secret("elsewhere", map[string]string{"username": "u", "password": "p"})
	other.Namespace = "team-b"
	secrets = append(secrets, other)
	c := fake.NewClientBuilder().WithObjects(secrets...).Build()
	rv := map[string]string{}
	for _, o := range secrets {
		var s corev1.Secret
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(o), &s); err != nil {
			t.Fatal(err)
		}
		rv[s.Name] = s.Name + "@" + s.ResourceVersion
	}
	f := &Factory{Secrets: c}

	cases := []struct {
		name     string
		p        *notifyv1.NotificationProvider
		sender   any // the concrete type of a built sender; nil when the build fails
		reason   string
		errText  string
		versions []string
	}{
		{name: "email without secrets", p: smtp(nil), sender: &email.Sender{}},
		{name: "email with auth and CA", sender: &email.Sender{}, versions: []string{rv["smtp-auth"], rv["smtp-ca"]},
			p: smtp(func(s *notifyv1.SMTPProvider) {
				s.AuthSecretRef = &notifyv1.SecretReference{Name: "smtp-auth"}
				s.CASecretRef = &notifyv1.SecretReference{Name: "smtp-ca"}
				s.TLS = notifyv1.SMTPImplicitTLS
			})},
		{name: "email auth secret missing", reason: ReasonSecretNotFound, errText: `Secret "nope" not found in namespace team-a`,
			p: smtp(func(s *notifyv1.SMTPProvider) { s.AuthSecretRef = &notifyv1.SecretReference{Name: "nope"} })},
		{name: "email secret of another namespace", reason: ReasonSecretNotFound, errText: `Secret "elsewhere" not found`,
			p: smtp(func(s *notifyv1.SMTPProvider) { s.AuthSecretRef = &notifyv1.SecretReference{Name: "elsewhere"} })},
		{name: "email password key missing", reason: ReasonSecretKeyMissing, errText: `Secret "smtp-nopass" has no key "password"`,
			versions: []string{rv["smtp-nopass"]},
			p:        smtp(func(s *notifyv1.SMTPProvider) { s.AuthSecretRef = &notifyv1.SecretReference{Name: "smtp-nopass"} })},
		{name: "email CA missing after auth was read", reason: ReasonSecretNotFound, versions: []string{rv["smtp-auth"]},
			p: smtp(func(s *notifyv1.SMTPProvider) {
				s.AuthSecretRef = &notifyv1.SecretReference{Name: "smtp-auth"}
				s.CASecretRef = &notifyv1.SecretReference{Name: "nope"}
			})},
		{name: "email CA key missing", reason: ReasonSecretKeyMissing, errText: `has no key "ca.crt"`, versions: []string{rv["empty"]},
			p: smtp(func(s *notifyv1.SMTPProvider) { s.CASecretRef = &notifyv1.SecretReference{Name: "empty"} })},
		{name: "email invalid settings", reason: ReasonInvalidConfig, errText: "port 0 out of range",
			p: smtp(func(s *notifyv1.SMTPProvider) { s.Port = 0 })},
		{name: "email without smtp", reason: ReasonInvalidConfig, errText: "spec.smtp is required",
			p: provider(notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelEmail})},

		{name: "webhook", p: hook(nil), sender: &webhook.Sender{}},
		{name: "webhook signed", sender: &webhook.Sender{}, versions: []string{rv["signing"]},
			p: hook(func(w *notifyv1.WebhookProvider) {
				w.SigningSecretRef = &notifyv1.SecretKeyReference{Name: "signing", Key: "key"}
			})},
		{name: "webhook signing key missing", reason: ReasonSecretKeyMissing, errText: `Secret "signing" has no key "other"`,
			versions: []string{rv["signing"]},
			p: hook(func(w *notifyv1.WebhookProvider) {
				w.SigningSecretRef = &notifyv1.SecretKeyReference{Name: "signing", Key: "other"}
			})},
		{name: "webhook signing secret missing", reason: ReasonSecretNotFound,
			p: hook(func(w *notifyv1.WebhookProvider) {
				w.SigningSecretRef = &notifyv1.SecretKeyReference{Name: "nope", Key: "key"}
			})},
		{name: "webhook headers from Secrets", sender: &webhook.Sender{}, versions: []string{rv["signing"], rv["cloud"], rv["waha"]},
			p: hook(func(w *notifyv1.WebhookProvider) {
				w.SigningSecretRef = &notifyv1.SecretKeyReference{Name: "signing", Key: "key"}
				w.HeadersFrom = []notifyv1.WebhookHeaderFromSecret{
					{Name: "Authorization", SecretKeyRef: notifyv1.SecretKeyReference{Name: "cloud", Key: "token"}},
					{Name: "X-Api-Key", SecretKeyRef: notifyv1.SecretKeyReference{Name: "waha", Key: "apiKey"}},
				}
			})},
		{name: "webhook header Secret key missing", reason: ReasonSecretKeyMissing, errText: `Secret "cloud" has no key "nope"`,
			versions: []string{rv["cloud"]},
			p: hook(func(w *notifyv1.WebhookProvider) {
				w.HeadersFrom = []notifyv1.WebhookHeaderFromSecret{{Name: "Authorization", SecretKeyRef: notifyv1.SecretKeyReference{Name: "cloud", Key: "nope"}}}
			})},
		{name: "webhook header from Secret also in headers", reason: ReasonInvalidConfig, errText: "set both in headers and from a Secret",
			versions: []string{rv["cloud"]},
			p: hook(func(w *notifyv1.WebhookProvider) {
				w.Headers = map[string]string{"authorization": "x"}
				w.HeadersFrom = []notifyv1.WebhookHeaderFromSecret{{Name: "Authorization", SecretKeyRef: notifyv1.SecretKeyReference{Name: "cloud", Key: "token"}}}
			})},
		{name: "webhook headers from Secrets without url", reason: ReasonInvalidConfig, errText: "headersFrom needs spec.webhook.url",
			p: hook(func(w *notifyv1.WebhookProvider) {
				w.URL = ""
				w.HeadersFrom = []notifyv1.WebhookHeaderFromSecret{{Name: "Authorization", SecretKeyRef: notifyv1.SecretKeyReference{Name: "cloud", Key: "token"}}}
			})},
		{name: "webhook reserved header", reason: ReasonInvalidConfig, errText: "set by the sender",
			p: hook(func(w *notifyv1.WebhookProvider) { w.Headers = map[string]string{"Idempotency-Key": "x"} })},
		{name: "webhook without settings", reason: ReasonInvalidConfig, errText: "spec.webhook is required",
			p: provider(notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelWebhook})},

		{name: "whatsapp cloud", sender: &whatsapp.CloudSender{}, versions: []string{rv["cloud"]},
			p: wa(notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppCloud, PhoneNumberID: "106540352242922", CredentialsSecretRef: &notifyv1.SecretReference{Name: "cloud"}})},
		{name: "whatsapp cloud without credentials", reason: ReasonInvalidConfig, errText: `the cloud api needs credentialsSecretRef with key "token"`,
			p: wa(notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppCloud, PhoneNumberID: "106540352242922"})},
		{name: "whatsapp cloud token missing", reason: ReasonSecretKeyMissing, errText: `Secret "twilio" has no key "token"`,
			versions: []string{rv["twilio"]},
			p:        wa(notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppCloud, PhoneNumberID: "1", CredentialsSecretRef: &notifyv1.SecretReference{Name: "twilio"}})},
		{name: "whatsapp cloud invalid settings", reason: ReasonInvalidConfig, errText: "phoneNumberID",
			versions: []string{rv["cloud"]},
			p:        wa(notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppCloud, PhoneNumberID: "+49 151", CredentialsSecretRef: &notifyv1.SecretReference{Name: "cloud"}})},
		{name: "whatsapp twilio", sender: &whatsapp.TwilioSender{}, versions: []string{rv["twilio"]},
			p: wa(notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppTwilio, AccountSID: twilioSID, From: "+14155238886", CredentialsSecretRef: &notifyv1.SecretReference{Name: "twilio"}})},
		{name: "whatsapp twilio secret missing", reason: ReasonSecretNotFound,
			p: wa(notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppTwilio, AccountSID: twilioSID, From: "+14155238886", CredentialsSecretRef: creds})},
		{name: "whatsapp waha without credentials", sender: &whatsapp.WAHASender{},
			p: wa(notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppWAHA, BaseURL: "http://waha:3000"})},
		{name: "whatsapp waha with api key", sender: &whatsapp.WAHASender{}, versions: []string{rv["waha"]},
			p: wa(notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppWAHA, BaseURL: "https://waha:3000", CredentialsSecretRef: &notifyv1.SecretReference{Name: "waha"}})},
		{name: "whatsapp waha credentials secret may be empty", sender: &whatsapp.WAHASender{}, versions: []string{rv["empty"]},
			p: wa(notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppWAHA, BaseURL: "http://waha:3000", CredentialsSecretRef: &notifyv1.SecretReference{Name: "empty"}})},
		{name: "whatsapp cloud with receipts", sender: &whatsapp.CloudSender{}, versions: []string{rv["cloud"], rv["meta-webhook"], rv["meta-webhook"]},
			p: wa(notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppCloud, PhoneNumberID: "1", CredentialsSecretRef: &notifyv1.SecretReference{Name: "cloud"},
				Receipts: &notifyv1.WhatsAppReceipts{AppSecretRef: &notifyv1.SecretKeyReference{Name: "meta-webhook", Key: "appSecret"},
					VerifyTokenRef: &notifyv1.SecretKeyReference{Name: "meta-webhook", Key: "verifyToken"}}})},
		{name: "whatsapp cloud receipts app secret missing", reason: ReasonSecretKeyMissing, errText: `Secret "meta-webhook" has no key "secret"`,
			versions: []string{rv["cloud"], rv["meta-webhook"]},
			p: wa(notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppCloud, PhoneNumberID: "1", CredentialsSecretRef: &notifyv1.SecretReference{Name: "cloud"},
				Receipts: &notifyv1.WhatsAppReceipts{AppSecretRef: &notifyv1.SecretKeyReference{Name: "meta-webhook", Key: "secret"},
					VerifyTokenRef: &notifyv1.SecretKeyReference{Name: "meta-webhook", Key: "verifyToken"}}})},
		{name: "whatsapp unknown api", reason: ReasonInvalidConfig, errText: `unknown whatsapp api "signal"`,
			p: wa(notifyv1.WhatsAppProvider{API: "signal"})},
		{name: "whatsapp without settings", reason: ReasonInvalidConfig, errText: "spec.whatsapp is required",
			p: provider(notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelWhatsApp})},

		{name: "inApp has no providers", reason: ReasonInvalidConfig, errText: `channel "inApp" has no providers`,
			p: provider(notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelInApp})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := f.Build(t.Context(), c.p)
			if !reflect.DeepEqual(b.SecretVersions, c.versions) {
				t.Errorf("SecretVersions = %q, want %q", b.SecretVersions, c.versions)
			}
			if b.Generation != c.p.Generation {
				t.Errorf("Generation = %d, want %d", b.Generation, c.p.Generation)
			}
			if c.reason == "" {
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				if reflect.TypeOf(b.Sender) != reflect.TypeOf(c.sender) {
					t.Errorf("sender is a %T, want a %T", b.Sender, c.sender)
				}
				// Every Secret a working provider uses must be watched.
				var read []string
				for _, v := range b.SecretVersions {
					read = append(read, v[:strings.LastIndex(v, "@")])
				}
				if names := SecretNames(c.p); !reflect.DeepEqual(names, read) {
					t.Errorf("SecretNames = %q, but Build read %q", names, read)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Build error = %v (%T), want a *ConfigError", err, err)
			}
			if ce.Reason != c.reason || !strings.Contains(ce.Error(), c.errText) {
				t.Errorf("got %s %q, want %s containing %q", ce.Reason, ce.Error(), c.reason, c.errText)
			}
			if b.Sender != nil {
				t.Errorf("a failed build returned sender %#v", b.Sender)
			}
		})
	}
}

func TestBuildReadErrorIsNotAConfigError(t *testing.T) {
	denied := apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "smtp-auth", errors.New("no RBAC"))
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
			return denied
		},
	}).Build()
	p := smtp(func(s *notifyv1.SMTPProvider) { s.AuthSecretRef = &notifyv1.SecretReference{Name: "smtp-auth"} })
	_, err := (&Factory{Secrets: c}).Build(t.Context(), p)
	var ce *ConfigError
	if err == nil || errors.As(err, &ce) || !apierrors.IsForbidden(err) {
		t.Fatalf("Build error = %v, want the API error, not a *ConfigError", err)
	}
	if !strings.Contains(err.Error(), "reading Secret smtp-auth") {
		t.Errorf("error %q does not name the Secret", err)
	}
}

func TestFingerprint(t *testing.T) {
	s := secret("signing", map[string]string{"key": "k1"})
	c := fake.NewClientBuilder().WithObjects(s).Build()
	f := &Factory{Secrets: c}
	p := hook(func(w *notifyv1.WebhookProvider) {
		w.SigningSecretRef = &notifyv1.SecretKeyReference{Name: "signing", Key: "key"}
	})
	fingerprint := func() string {
		t.Helper()
		b, err := f.Build(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		return b.Fingerprint()
	}

	first := fingerprint()
	if !strings.HasPrefix(first, "3/signing@") {
		t.Errorf("fingerprint %q, want generation/name@version", first)
	}
	if again := fingerprint(); again != first {
		t.Errorf("same configuration, fingerprints %q and %q", first, again)
	}
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(s), s); err != nil {
		t.Fatal(err)
	}
	s.Data["key"] = []byte("k2")
	if err := c.Update(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	afterSecret := fingerprint()
	if afterSecret == first {
		t.Errorf("Secret changed, fingerprint stayed %q", first)
	}
	p.Generation++
	if fingerprint() == afterSecret {
		t.Errorf("generation changed, fingerprint stayed %q", afterSecret)
	}
	if got := (Built{Generation: 7}).Fingerprint(); got != "7" {
		t.Errorf("fingerprint without Secrets = %q, want 7", got)
	}
}

func TestSecretNames(t *testing.T) {
	cases := []struct {
		name string
		p    *notifyv1.NotificationProvider
		want []string
	}{
		{"email none", smtp(nil), nil},
		{"email auth and CA", smtp(func(s *notifyv1.SMTPProvider) {
			s.AuthSecretRef = &notifyv1.SecretReference{Name: "a"}
			s.CASecretRef = &notifyv1.SecretReference{Name: "b"}
		}), []string{"a", "b"}},
		{"email without smtp", provider(notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelEmail}), nil},
		{"webhook unsigned", hook(nil), nil},
		{"webhook signed", hook(func(w *notifyv1.WebhookProvider) {
			w.SigningSecretRef = &notifyv1.SecretKeyReference{Name: "s", Key: "k"}
		}), []string{"s"}},
		{"webhook signed with headers from Secrets", hook(func(w *notifyv1.WebhookProvider) {
			w.SigningSecretRef = &notifyv1.SecretKeyReference{Name: "s", Key: "k"}
			w.HeadersFrom = []notifyv1.WebhookHeaderFromSecret{
				{Name: "Authorization", SecretKeyRef: notifyv1.SecretKeyReference{Name: "auth", Key: "a"}},
				{Name: "X-Api-Key", SecretKeyRef: notifyv1.SecretKeyReference{Name: "key", Key: "k"}},
			}
		}), []string{"s", "auth", "key"}},
		{"whatsapp", wa(notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppTwilio, CredentialsSecretRef: creds}), []string{"creds"}},
		{"whatsapp without credentials", wa(notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppWAHA}), nil},
		{"inApp", provider(notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelInApp}), nil},
	}
	for _, c := range cases {
		if got := SecretNames(c.p); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: SecretNames = %q, want %q", c.name, got, c.want)
		}
	}
}

// TestEgressRefusesProviderHost: a provider whose own URL or host is an
// address the egress policy refuses is not built, with the reason
// DestinationNotAllowed; allowing loopback builds it.
func TestEgressRefusesProviderHost(t *testing.T) {
	c := fake.NewClientBuilder().Build()
	for name, p := range map[string]*notifyv1.NotificationProvider{
		"webhook":           hook(func(w *notifyv1.WebhookProvider) { w.URL = "http://127.0.0.1:9/hook" }),
		"webhook localhost": hook(func(w *notifyv1.WebhookProvider) { w.URL = "https://localhost/hook" }),
		"webhook ipv6":      hook(func(w *notifyv1.WebhookProvider) { w.URL = "http://[::1]:9/hook" }),
		"webhook metadata":  hook(func(w *notifyv1.WebhookProvider) { w.URL = "http://169.254.169.254/latest" }),
		"smtp":              smtp(func(s *notifyv1.SMTPProvider) { s.Host = "127.0.0.1" }),
		"smtp private":      smtp(func(s *notifyv1.SMTPProvider) { s.Host = "10.0.0.25" }),
		"whatsapp": provider(notifyv1.NotificationProviderSpec{Channel: notifyv1.ChannelWhatsApp, WhatsApp: &notifyv1.WhatsAppProvider{
			API: notifyv1.WhatsAppWAHA, BaseURL: "http://192.168.1.10:3000", Session: "default",
		}}),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := (&Factory{Secrets: c}).Build(t.Context(), p)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Reason != ReasonDestinationNotAllowed {
				t.Fatalf("Build error = %v, want a ConfigError with reason %s", err, ReasonDestinationNotAllowed)
			}
			t.Log(err)
		})
	}
	allow, err := egress.New([]string{"127.0.0.0/8", "::1", "localhost"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*notifyv1.NotificationProvider{
		hook(func(w *notifyv1.WebhookProvider) { w.URL = "http://127.0.0.1:9/hook" }),
		hook(func(w *notifyv1.WebhookProvider) { w.URL = "https://localhost/hook" }),
		smtp(func(s *notifyv1.SMTPProvider) { s.Host = "127.0.0.1" }),
	} {
		if _, err := (&Factory{Secrets: c, Settings: Settings{Egress: allow}}).Build(t.Context(), p); err != nil {
			t.Errorf("with loopback allowed: %v", err)
		}
	}
}

// TestSecretOptIn: a provider may read only Secrets labelled
// notify.herald.dev/provider-secret=true, and never a service-account token.
func TestSecretOptIn(t *testing.T) {
	unlabelled := secret("unlabelled", map[string]string{"key": "k"})
	unlabelled.Labels = nil
	wrongValue := secret("wrong-value", map[string]string{"key": "k"})
	wrongValue.Labels[notifyv1.LabelProviderSecret] = "yes"
	token := secret("sa-token", map[string]string{"key": "k", "token": "eyJ..."})
	token.Type = corev1.SecretTypeServiceAccountToken
	c := fake.NewClientBuilder().WithObjects(unlabelled, wrongValue, token, secret("ok", map[string]string{"key": "k"})).Build()
	for name, want := range map[string]string{
		"unlabelled":  "not labelled notify.herald.dev/provider-secret=true",
		"wrong-value": "not labelled notify.herald.dev/provider-secret=true",
		"sa-token":    "service-account token",
	} {
		p := hook(func(w *notifyv1.WebhookProvider) {
			w.SigningSecretRef = &notifyv1.SecretKeyReference{Name: name, Key: "key"}
		})
		_, err := (&Factory{Secrets: c}).Build(t.Context(), p)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Reason != ReasonSecretNotAllowed || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Build error = %v, want SecretNotAllowed mentioning %q", name, err, want)
		}
	}
	p := hook(func(w *notifyv1.WebhookProvider) {
		w.SigningSecretRef = &notifyv1.SecretKeyReference{Name: "ok", Key: "key"}
	})
	if _, err := (&Factory{Secrets: c}).Build(t.Context(), p); err != nil {
		t.Errorf("labelled Secret: %v", err)
	}
}

// TestCredentialsNeedTLS: a provider whose requests carry credentials is
// built only when they travel over TLS, or when the egress allowlist names
// the destination host (by name, or an address by address or CIDR).
func TestCredentialsNeedTLS(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(
		secret("smtp-auth", map[string]string{"username": "u", "password": "p"}),
		secret("cloud", map[string]string{"token": "EAAx"}),
		secret("twilio", map[string]string{"authToken": "tok"}),
		secret("waha", map[string]string{"apiKey": "k"}),
		secret("empty", nil),
		secret("signing", map[string]string{"key": "k"}),
	).Build()
	ref := func(n string) *notifyv1.SecretReference { return &notifyv1.SecretReference{Name: n} }
	auth := func(host string, tls notifyv1.SMTPTLSMode) *notifyv1.NotificationProvider {
		return smtp(func(s *notifyv1.SMTPProvider) { s.Host, s.TLS, s.AuthSecretRef = host, tls, ref("smtp-auth") })
	}
	cloud := func(base string) *notifyv1.NotificationProvider {
		return wa(notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppCloud, BaseURL: base, PhoneNumberID: "106540352242922", CredentialsSecretRef: ref("cloud")})
	}
	twilio := func(base string) *notifyv1.NotificationProvider {
		return wa(notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppTwilio, BaseURL: base, AccountSID: twilioSID, From: "+14155238886", CredentialsSecretRef: ref("twilio")})
	}
	waha := func(base, secret string) *notifyv1.NotificationProvider {
		return wa(notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppWAHA, BaseURL: base, Session: "default", CredentialsSecretRef: ref(secret)})
	}
	fromSecret := func(url string) *notifyv1.NotificationProvider {
		return hook(func(w *notifyv1.WebhookProvider) {
			w.URL = url
			w.HeadersFrom = []notifyv1.WebhookHeaderFromSecret{{Name: "Authorization", SecretKeyRef: notifyv1.SecretKeyReference{Name: "cloud", Key: "token"}}}
		})
	}
	allow := egress.MustNew([]string{"127.0.0.0/8", "::1", "relay.internal.example", "10.20.0.0/16"}, nil)
	cases := []struct {
		name    string
		p       *notifyv1.NotificationProvider
		policy  *egress.Policy
		refused string // text of the InsecureCredentials message; empty when built
	}{
		{name: "smtp auth, tls none", p: auth("smtp.example.com", notifyv1.SMTPTLSNone), refused: "SMTP AUTH username and password would be sent to smtp.example.com without TLS; set spec.smtp.tls to StartTLS or ImplicitTLS"},
		{name: "smtp auth, starttls", p: auth("smtp.example.com", notifyv1.SMTPStartTLS)},
		{name: "smtp auth, default tls", p: auth("smtp.example.com", "")},
		{name: "smtp auth, implicit tls", p: auth("smtp.example.com", notifyv1.SMTPImplicitTLS)},
		{name: "smtp without auth, tls none", p: smtp(func(s *notifyv1.SMTPProvider) { s.TLS = notifyv1.SMTPTLSNone })},
		{name: "smtp auth, tls none, host named", p: auth("relay.internal.example", notifyv1.SMTPTLSNone), policy: allow},
		{name: "smtp auth, tls none, address in allowed CIDR", p: auth("10.20.1.2", notifyv1.SMTPTLSNone), policy: allow},
		{name: "smtp auth, tls none, other host", p: auth("smtp.example.com", notifyv1.SMTPTLSNone), policy: allow, refused: "--egress-allow"},

		{name: "cloud default base URL", p: cloud("")},
		{name: "cloud https", p: cloud("https://graph.example.com")},
		{name: "cloud http", p: cloud("http://graph.example.com"), refused: "Cloud API access token (Authorization: Bearer) would be sent to graph.example.com without TLS; use an https spec.whatsapp.baseURL"},
		{name: "cloud http, loopback allowed by CIDR", p: cloud("http://127.0.0.1:8080"), policy: allow},
		{name: "twilio default base URL", p: twilio("")},
		{name: "twilio http", p: twilio("http://twilio.example.com"), refused: "Twilio credentials (HTTP basic auth)"},
		{name: "twilio http, ::1 allowed", p: twilio("http://[::1]:8080"), policy: allow},
		{name: "twilio http, localhost only by CIDR", p: twilio("http://localhost:8080"), policy: allow, refused: "would be sent to localhost"},
		{name: "waha http with api key", p: waha("http://waha.example.com:3000", "waha"), refused: "WAHA API key (X-Api-Key)"},
		{name: "waha https with api key", p: waha("https://waha.example.com", "waha")},
		{name: "waha http without api key", p: waha("http://waha.example.com:3000", "empty")},
		{name: "waha http with api key, host named", p: waha("http://relay.internal.example:3000", "waha"), policy: allow},

		{name: "webhook headersFrom over http", p: fromSecret("http://hooks.example.com/x"), refused: "spec.webhook.headersFrom values would be sent to hooks.example.com without TLS; use an https spec.webhook.url"},
		{name: "webhook headersFrom over https", p: fromSecret("https://hooks.example.com/x")},
		{name: "webhook headersFrom over http, host named", p: fromSecret("http://relay.internal.example/x"), policy: allow},
		{name: "webhook headersFrom over http, address in allowed CIDR", p: fromSecret("http://10.20.0.9:8080/x"), policy: allow},
		{name: "webhook headers (not from a Secret) over http", p: hook(func(w *notifyv1.WebhookProvider) {
			w.URL = "http://hooks.example.com/x"
			w.Headers = map[string]string{"X-Team": "platform"}
		})},
		{name: "webhook signed over http (HMAC is no credential)", p: hook(func(w *notifyv1.WebhookProvider) {
			w.URL = "http://hooks.example.com/x"
			w.SigningSecretRef = &notifyv1.SecretKeyReference{Name: "signing", Key: "key"}
		})},
	}
	for _, c2 := range cases {
		t.Run(c2.name, func(t *testing.T) {
			f := &Factory{Secrets: c, Settings: Settings{Egress: c2.policy}}
			b, err := f.Build(t.Context(), c2.p)
			if c2.refused == "" {
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Reason != ReasonInsecureCredentials || !strings.Contains(err.Error(), c2.refused) {
				t.Fatalf("Build error = %v, want %s containing %q", err, ReasonInsecureCredentials, c2.refused)
			}
			if b.Sender != nil {
				t.Errorf("refused build returned a sender")
			}
		})
	}
}

// TestInsecureSkipVerifyNeedsTheFlag: an SMTP provider with
// insecureSkipVerify is built only when the controller allows it.
func TestInsecureSkipVerifyNeedsTheFlag(t *testing.T) {
	c := fake.NewClientBuilder().Build()
	p := smtp(func(s *notifyv1.SMTPProvider) { s.InsecureSkipVerify = true })
	_, err := (&Factory{Secrets: c}).Build(t.Context(), p)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Reason != ReasonInsecureSkipVerifyNotAllowed || !strings.Contains(err.Error(), "--allow-insecure-skip-verify") {
		t.Fatalf("Build error = %v, want %s naming the flag", err, ReasonInsecureSkipVerifyNotAllowed)
	}
	if _, err := (&Factory{Secrets: c, Settings: Settings{AllowInsecureSkipVerify: true}}).Build(t.Context(), p); err != nil {
		t.Errorf("with the flag: %v", err)
	}
}

// TestWebhookHeadersFromSecretArrive: a webhook provider's headersFrom
// values reach the endpoint; plain HTTP to loopback is allowed because the
// policy allows 127.0.0.0/8, as in the test suites.
func TestWebhookHeadersFromSecretArrive(t *testing.T) {
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	t.Cleanup(srv.Close)
	c := fake.NewClientBuilder().WithObjects(secret("hook-auth", map[string]string{"authorization": "Bearer t0ken"})).Build()
	f := &Factory{Secrets: c, Settings: Settings{Egress: egress.MustNew([]string{"127.0.0.0/8", "::1"}, nil)}}
	p := hook(func(w *notifyv1.WebhookProvider) {
		w.URL = srv.URL + "/hook"
		w.HeadersFrom = []notifyv1.WebhookHeaderFromSecret{{Name: "Authorization", SecretKeyRef: notifyv1.SecretKeyReference{Name: "hook-auth", Key: "authorization"}}}
	})
	b, err := f.Build(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Sender.Send(t.Context(), &channel.Message{ID: "1", Namespace: ns, Delivery: "d", Title: "t", Body: "b"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if h := <-got; h.Get("Authorization") != "Bearer t0ken" {
		t.Errorf("Authorization = %q, want the Secret's value", h.Get("Authorization"))
	}
}
