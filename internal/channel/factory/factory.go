// Package factory builds the channel.Sender of a NotificationProvider: it
// reads the Secrets the provider references, turns the provider's settings
// into the channel package's configuration and validates it.
//
// Each channel has its own file (email.go, webhook.go, whatsapp.go); this
// file holds what they share: reading Secrets, recording which versions of
// them a sender was built from, and the errors that say what the provider's
// author must fix.
package factory

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/egress"
)

// Ready reasons of a provider that cannot be built, as ConfigError.Reason.
// They are the API\'s, named here for the factory\'s callers.
const (
	ReasonSecretNotFound   = notifyv1.ReasonSecretNotFound
	ReasonSecretKeyMissing = notifyv1.ReasonSecretKeyMissing
	ReasonInvalidConfig    = notifyv1.ReasonInvalidConfig
	ReasonSecretNotAllowed = notifyv1.ReasonSecretNotAllowed
	// ReasonDestinationNotAllowed: the provider's URL or host is refused
	// by the egress policy.
	ReasonDestinationNotAllowed = string(notifyv1.ReasonDestinationNotAllowed)
	// ReasonInsecureCredentials: credentials would travel without TLS to
	// a host the egress allowlist does not name.
	ReasonInsecureCredentials = notifyv1.ReasonInsecureCredentials
	// ReasonInsecureSkipVerifyNotAllowed: insecureSkipVerify without
	// Settings.AllowInsecureSkipVerify.
	ReasonInsecureSkipVerifyNotAllowed = notifyv1.ReasonInsecureSkipVerifyNotAllowed
)

// ConfigError is a problem with a provider's settings or Secrets that only
// a change to them fixes. Reason is the provider's Ready reason.
type ConfigError struct {
	Reason string
	Err    error
}

func (e *ConfigError) Error() string { return e.Err.Error() }

func (e *ConfigError) Unwrap() error { return e.Err }

// invalid reports err, if any, as an InvalidConfig problem.
func invalid(err error) error {
	if err == nil {
		return nil
	}
	return &ConfigError{Reason: ReasonInvalidConfig, Err: err}
}

// Factory builds senders. Secrets reads the Secrets providers reference;
// Herald passes a reader that goes to the API server, because it caches
// only Secret metadata, never their data.
type Factory struct {
	Secrets client.Reader
	Settings
}

// Settings are the controller-wide settings every sender is built with.
type Settings struct {
	// Egress is the policy senders connect under; nil means the default
	// policy (only globally routable addresses).
	Egress *egress.Policy
	// HTTPClient is the client of the HTTP senders. It must dial under
	// Egress (channel.NewHTTPClient); nil means one is made for the build.
	HTTPClient *http.Client
	// AllowInsecureSkipVerify lets SMTP providers set insecureSkipVerify
	// (--allow-insecure-skip-verify); without it such a provider is not
	// built.
	AllowInsecureSkipVerify bool
	// InboxURL is the inbox web page that chat messages of approval
	// notifications link to (--inbox-url); a provider's own inboxURL
	// wins. Empty: no link.
	InboxURL string
}

func (f *Factory) policy() *egress.Policy {
	if f.Egress == nil {
		return egress.MustNew(nil, nil)
	}
	return f.Egress
}

func (f *Factory) httpClient() *http.Client {
	if f.HTTPClient == nil {
		return channel.NewHTTPClient(f.policy())
	}
	return f.HTTPClient
}

// checkHost refuses a provider's own host when the egress policy does,
// so the provider says so in its Ready condition before any delivery.
func (f *Factory) checkHost(field, host string) error {
	if err := f.policy().CheckHost(host); err != nil {
		return &ConfigError{Reason: ReasonDestinationNotAllowed, Err: fmt.Errorf("%s: %w", field, err)}
	}
	return nil
}

// checkURL is checkHost for a URL; a URL that does not parse is left to
// the channel package's validation.
func (f *Factory) checkURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return nil
	}
	return f.checkHost(field, u.Hostname())
}

// requireTLS refuses credentials sent without TLS (secure false) to host,
// unless the egress allowlist names the host: by name, or, for a literal
// address, by an address or CIDR entry (egress.Policy.HostAllowed). A host
// name such as localhost counts only when it is listed itself. what says
// which credentials, fix how to mend the provider.
func (f *Factory) requireTLS(secure bool, host, what, fix string) error {
	if secure || f.policy().HostAllowed(host) {
		return nil
	}
	return &ConfigError{Reason: ReasonInsecureCredentials, Err: fmt.Errorf(
		"%s would be sent to %s without TLS; %s, or name the host in the controller's --egress-allow if the network to it is trusted",
		what, host, fix)}
}

// requireHTTPS is requireTLS for a URL: only https is secure. A URL that
// does not parse is left to the channel package's validation.
func (f *Factory) requireHTTPS(field, raw, what string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return nil
	}
	return f.requireTLS(strings.EqualFold(u.Scheme, "https"), u.Hostname(), what, "use an https "+field)
}

// Built is a sender and what it was built from.
type Built struct {
	Sender channel.Sender
	// Generation is the provider's metadata.generation.
	Generation int64
	// SecretVersions lists the Secrets read, in the order read, as
	// "name@resourceVersion". When building failed it lists those read
	// before the failure.
	SecretVersions []string
}

// Fingerprint identifies the configuration a sender was built from: the
// provider's generation and the versions of the Secrets read. A change to
// the provider's spec or to one of its Secrets changes it.
func (b Built) Fingerprint() string {
	return strings.Join(append([]string{fmt.Sprint(b.Generation)}, b.SecretVersions...), "/")
}

// Build reads p's Secrets and builds its sender. It fails with a
// *ConfigError when the provider's settings or Secrets are unusable, and
// with another error when a Secret could not be read (the API server did
// not answer, or denied access). Either way the returned Built records the
// Secret versions read so far. Secrets are only read from p's own namespace:
// a reference carries no namespace.
func (f *Factory) Build(ctx context.Context, p *notifyv1.NotificationProvider) (Built, error) {
	r := &secretReader{ctx: ctx, client: f.Secrets, namespace: p.Namespace}
	var (
		s   channel.Sender
		err error
	)
	switch spec := &p.Spec; {
	case spec.Channel == notifyv1.ChannelEmail && spec.SMTP != nil:
		s, err = f.buildEmail(r, spec.SMTP)
	case spec.Channel == notifyv1.ChannelWebhook && spec.Webhook != nil:
		s, err = f.buildWebhook(r, spec.Webhook)
	case spec.Channel == notifyv1.ChannelWhatsApp && spec.WhatsApp != nil:
		s, err = f.buildWhatsApp(r, spec.WhatsApp)
	case spec.Channel == notifyv1.ChannelSlack && spec.Slack != nil:
		s, err = f.buildSlack(r, spec.Slack)
	case spec.Channel == notifyv1.ChannelTeams && spec.Teams != nil:
		s, err = f.buildTeams(r, spec.Teams)
	case spec.Channel == notifyv1.ChannelTelegram && spec.Telegram != nil:
		s, err = f.buildTelegram(r, spec.Telegram)
	default:
		err = invalid(missingSettings(spec.Channel))
	}
	return Built{Sender: s, Generation: p.Generation, SecretVersions: r.versions}, err
}

// missingSettings says why a provider of channel ch cannot be built when
// the switch in Build found nothing to build. Admission requires each
// channel's settings, but objects stored before a rule existed, or written
// past admission, may lack them.
func missingSettings(ch notifyv1.Channel) error {
	switch ch {
	case notifyv1.ChannelEmail:
		return errors.New("spec.smtp is required for an email provider")
	case notifyv1.ChannelWebhook:
		return errors.New("spec.webhook is required for a webhook provider")
	case notifyv1.ChannelWhatsApp:
		return errors.New("spec.whatsapp is required for a whatsapp provider")
	case notifyv1.ChannelSlack, notifyv1.ChannelTeams, notifyv1.ChannelTelegram:
		return fmt.Errorf("spec.%s is required for a %s provider", ch, ch)
	}
	return fmt.Errorf("channel %q has no providers", ch)
}

// SecretNames lists the Secrets Build reads for p, in the order it reads
// them (when they exist and have their keys). The provider reconciler
// indexes providers by them, so a change to one of these Secrets rebuilds
// exactly the providers that use it.
func SecretNames(p *notifyv1.NotificationProvider) []string {
	switch p.Spec.Channel {
	case notifyv1.ChannelEmail:
		return emailSecrets(p.Spec.SMTP)
	case notifyv1.ChannelWebhook:
		return webhookSecrets(p.Spec.Webhook)
	case notifyv1.ChannelWhatsApp:
		return whatsAppSecrets(p.Spec.WhatsApp)
	case notifyv1.ChannelSlack, notifyv1.ChannelTeams, notifyv1.ChannelTelegram:
		return chatSecrets(&p.Spec)
	}
	return nil
}

// build adapts a channel package's constructor: a validation failure is an
// InvalidConfig problem, and a failed build returns no sender at all (not
// a typed nil).
func build[S channel.Sender](s S, err error) (channel.Sender, error) {
	if err != nil {
		return nil, invalid(err)
	}
	return s, nil
}

// secretReader reads the Secrets of one build and records their versions.
type secretReader struct {
	ctx       context.Context
	client    client.Reader
	namespace string
	versions  []string
}

// read returns the data of Secret name, checking that the Secret opted in
// to provider use (label LabelProviderSecret "true"), is not a
// service-account token, and has the required keys, not empty.
func (r *secretReader) read(name string, required ...string) (map[string][]byte, error) {
	var s corev1.Secret
	if err := r.client.Get(r.ctx, client.ObjectKey{Namespace: r.namespace, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &ConfigError{Reason: ReasonSecretNotFound, Err: fmt.Errorf("Secret %q not found in namespace %s", name, r.namespace)}
		}
		return nil, fmt.Errorf("reading Secret %s: %w", name, err)
	}
	r.versions = append(r.versions, name+"@"+s.ResourceVersion)
	if s.Type == corev1.SecretTypeServiceAccountToken {
		return nil, &ConfigError{Reason: ReasonSecretNotAllowed, Err: fmt.Errorf("Secret %q is a service-account token, which a provider may never use", name)}
	}
	if s.Labels[notifyv1.LabelProviderSecret] != "true" {
		return nil, &ConfigError{Reason: ReasonSecretNotAllowed, Err: fmt.Errorf("Secret %q is not labelled %s=true, so providers may not use it", name, notifyv1.LabelProviderSecret)}
	}
	for _, k := range required {
		if len(s.Data[k]) == 0 {
			return nil, &ConfigError{Reason: ReasonSecretKeyMissing, Err: fmt.Errorf("Secret %q has no key %q", name, k)}
		}
	}
	return s.Data, nil
}
