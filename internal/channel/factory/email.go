package factory

import (
	"errors"
	"strings"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/egress"
	"github.com/herald-dev/herald/internal/channel/email"
)

// buildEmail builds an SMTP sender. authSecretRef needs the keys username
// and password, caSecretRef the key ca.crt.
func (f *Factory) buildEmail(r *secretReader, s *notifyv1.SMTPProvider) (channel.Sender, error) {
	if err := f.checkHost("spec.smtp.host", strings.TrimSpace(s.Host)); err != nil {
		return nil, err
	}
	if s.InsecureSkipVerify && !f.AllowInsecureSkipVerify {
		return nil, &ConfigError{Reason: ReasonInsecureSkipVerifyNotAllowed, Err: errors.New(
			"spec.smtp.insecureSkipVerify is set but the controller runs without --allow-insecure-skip-verify; " +
				"put the server's CA in caSecretRef instead (or, for tests, start the controller with --allow-insecure-skip-verify)")}
	}
	if s.AuthSecretRef != nil {
		if err := f.requireTLS(s.TLS != notifyv1.SMTPTLSNone, strings.TrimSpace(s.Host), "the SMTP AUTH username and password",
			"set spec.smtp.tls to StartTLS or ImplicitTLS"); err != nil {
			return nil, err
		}
	}
	dialer := &egress.Dialer{Policy: f.policy()}
	cfg := email.Config{
		Host: s.Host, Port: int(s.Port), From: s.From, ReplyTo: s.ReplyTo,
		InsecureSkipVerify: s.InsecureSkipVerify,
		Dial:               dialer.DialContext,
	}
	switch s.TLS {
	case notifyv1.SMTPTLSNone:
		cfg.TLS = email.TLSNone
	case notifyv1.SMTPImplicitTLS:
		cfg.TLS = email.TLSImplicit
	default:
		cfg.TLS = email.TLSStartTLS
	}
	if ref := s.AuthSecretRef; ref != nil {
		data, err := r.read(ref.Name, "username", "password")
		if err != nil {
			return nil, err
		}
		cfg.Username, cfg.Password = string(data["username"]), string(data["password"])
	}
	if ref := s.CASecretRef; ref != nil {
		data, err := r.read(ref.Name, "ca.crt")
		if err != nil {
			return nil, err
		}
		cfg.CAPEM = data["ca.crt"]
	}
	return build(email.New(cfg))
}

// emailSecrets lists the Secrets buildEmail reads, in its order.
func emailSecrets(s *notifyv1.SMTPProvider) []string {
	if s == nil {
		return nil
	}
	var names []string
	if s.AuthSecretRef != nil {
		names = append(names, s.AuthSecretRef.Name)
	}
	if s.CASecretRef != nil {
		names = append(names, s.CASecretRef.Name)
	}
	return names
}
