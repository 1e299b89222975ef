package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"regexp"
	"time"

	mail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/egress"
)

// stage is the part of the SMTP session a reply answered. The same code
// means different things at different stages: "550" to MAIL FROM rejects
// our configured sender, "550" to RCPT TO rejects this recipient.
type stage int

const (
	stageSession  stage = iota // greeting, EHLO, STARTTLS, AUTH
	stageMailFrom              // MAIL FROM
	stageRcptTo                // RCPT TO
	stageData                  // DATA, the content, the final "."
	stageOther                 // RSET and other housekeeping
)

// String names the stage for people reading status.
func (s stage) String() string {
	switch s {
	case stageSession:
		return "the session (greeting, EHLO, STARTTLS or AUTH)"
	case stageMailFrom:
		return "the sender (MAIL FROM)"
	case stageRcptTo:
		return "the recipient (RCPT TO)"
	case stageData:
		return "the message (DATA)"
	}
	return "a command"
}

// classify turns a failed attempt into a *channel.Error.
//
//   - The context ended: Timeout for a deadline (whatever I/O error that
//     caused is only a symptom), Transient for a cancellation.
//   - An SMTP reply: 4xx is Transient, 5xx Permanent (see classifyReply).
//     SMTP has no standard "slow down" reply or Retry-After, so throttling
//     (usually 421/450/451) is Transient and the retry policy's backoff
//     paces it.
//   - Authentication could not even be attempted (no common mechanism,
//     server refuses PLAIN/LOGIN outside TLS): Permanent, ProviderFault.
//   - The server certificate does not verify: Transient with ProviderFault.
//     It is a configuration problem of the provider (wrong CA, expired or
//     wrong-name certificate), so a fallback provider may take over, but a
//     certificate renewal fixes it without any change on our side, so the
//     delivery itself is retried rather than failed.
//   - Anything else (connection refused or reset, DNS failure, TLS
//     handshake failure, I/O timeout) is Transient: the server is down or
//     unreachable right now. That includes a server that does not offer
//     STARTTLS in TLSStartTLS mode: go-mail reports it as an untyped
//     error, and retrying is also the right answer when a middlebox strips
//     STARTTLS for a while.
//
// A destination the egress policy refuses is DestinationNotAllowed.
func classify(ctx context.Context, err error) *channel.Error {
	if errors.Is(err, egress.ErrNotAllowed) {
		return channel.NewDestinationNotAllowed(err)
	}
	ctxErr := ctx.Err()
	if deadline, ok := ctx.Deadline(); ok && ctxErr == nil && !time.Now().Before(deadline) {
		// The socket deadline can fire a moment before the context's
		// timer does; past the deadline is a timeout either way.
		ctxErr = context.DeadlineExceeded
	}
	if ctxErr != nil {
		// Lead with the cause; the I/O error ("use of closed network
		// connection") is only how it surfaced.
		if err != ctxErr {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return &channel.Error{Reason: notifyv1.ReasonTimeout, Code: "smtp timeout", Err: err}
		}
		return channel.NewTransient("canceled", err)
	}

	// Replies during the mail transaction come wrapped in go-mail's
	// SendError, which carries the reply code and (when the server
	// announced ENHANCEDSTATUSCODES) the enhanced code, but does not
	// unwrap to the underlying *textproto.Error. ErrorCode is 0 when the
	// failure was not a server reply (for example a broken connection).
	var se *mail.SendError
	if errors.As(err, &se) && se.ErrorCode() != 0 {
		return classifyReply(sendStage(se.Reason), se.ErrorCode(), se.EnhancedStatusCode(), err)
	}
	// Replies while setting the session up (greeting, EHLO, STARTTLS,
	// AUTH) are returned as the *textproto.Error itself, wrapped with %w.
	var te *textproto.Error
	if errors.As(err, &te) {
		return classifyReply(stageSession, te.Code, enhancedCode(te.Code, te.Msg), err)
	}

	if isAuthNegotiationError(err) {
		return &channel.Error{Reason: notifyv1.ReasonPermanent, Code: "smtp auth", Scope: channel.ScopeProvider, Err: err}
	}
	if isCertificateError(err) {
		return &channel.Error{Reason: notifyv1.ReasonTransient, Code: "tls certificate", Scope: channel.ScopeProvider, Err: err}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		// go-mail's per-command timeout fired before any deadline of ours
		// (only possible when ctx has none).
		return &channel.Error{Reason: notifyv1.ReasonTimeout, Code: "smtp timeout", Err: err}
	}
	return channel.NewTransient("", err)
}

// classifyReply classifies an SMTP error reply. The Code reads like
// "smtp 550 5.1.1" (or "smtp 451" when there is no enhanced code).
//
// The Scope says whose fault a reply is (see replyScope): the provider's
// set-up (only these open its circuit), this recipient's address, or this
// message.
func classifyReply(st stage, code int, enhanced string, _ error) *channel.Error {
	label := fmt.Sprintf("smtp %d", code)
	if enhanced != "" {
		label += " " + enhanced
	}
	// The reply's text is the receiving server's words: it stays out of
	// status and Events, where only the codes (in label) say what happened.
	err := fmt.Errorf("the SMTP server refused %s", st)
	switch {
	case code >= 400 && code < 500:
		ce := channel.NewTransient(label, err)
		if st == stageRcptTo {
			// A mailbox over quota or greylisting one address: retried,
			// and never held against the provider.
			ce.Scope = channel.ScopeRecipient
		}
		return ce
	case code >= 500 && code < 600:
		ce := channel.NewPermanent(label, err)
		ce.Scope = replyScope(st, code)
		return ce
	default:
		// A 2xx/3xx where an error was expected: a confused server.
		return channel.NewTransient(label, err)
	}
}

// replyScope scopes a permanent (5xx) reply:
//
//   - ScopeProvider, the provider's own set-up, which every message would
//     meet and another provider might not: anything before MAIL FROM (the
//     server refuses us at the greeting, EHLO or STARTTLS, or our
//     credentials at AUTH); authentication replies wherever they come (530
//     "authentication required", 534, 535 "credentials invalid", 538); and
//     MAIL FROM rejections, since the sender address is provider
//     configuration.
//   - ScopeRecipient, any other refusal at RCPT TO: this one address is
//     refused, whether as unknown (5.1.x), full (5.2.x) or by policy
//     (5.7.x, such as "relay access denied" for one domain or a
//     recipient's own block list). Other recipients of the same server are
//     not, so it ends this delivery and opens no circuit.
//   - ScopeMessage, rejections of the content (at DATA, including 5.7.x
//     spam verdicts): this message's own problem.
func replyScope(st stage, code int) channel.Scope {
	switch {
	case st == stageSession, st == stageMailFrom:
		return channel.ScopeProvider
	case code == 530 || code == 534 || code == 535 || code == 538:
		return channel.ScopeProvider
	case st == stageRcptTo:
		return channel.ScopeRecipient
	}
	return channel.ScopeMessage
}

func sendStage(r mail.SendErrReason) stage {
	switch r {
	case mail.ErrSMTPMailFrom:
		return stageMailFrom
	case mail.ErrSMTPRcptTo:
		return stageRcptTo
	case mail.ErrSMTPData, mail.ErrWriteContent, mail.ErrSMTPDataClose:
		return stageData
	}
	return stageOther
}

// enhancedRE matches an RFC 3463 status code at the start of a reply text.
var enhancedRE = regexp.MustCompile(`^([245])\.\d{1,3}\.\d{1,3}\b`)

// enhancedCode returns the enhanced status code at the start of msg (the
// reply text after the three-digit code), if its class agrees with code as
// RFC 2034 requires; "" otherwise.
func enhancedCode(code int, msg string) string {
	m := enhancedRE.FindStringSubmatch(msg)
	if m == nil || m[1][0] != byte('0'+code/100) {
		return ""
	}
	return m[0]
}

// isAuthNegotiationError reports go-mail's errors for AUTH that could not
// be attempted: the server offers no usable mechanism, or would receive a
// password in clear text.
func isAuthNegotiationError(err error) bool {
	for _, target := range []error{
		smtp.ErrUnencrypted,
		smtp.ErrWrongHostname,
		mail.ErrNoSupportedAuthDiscovered,
		mail.ErrPlainAuthNotSupported,
		mail.ErrLoginAuthNotSupported,
		mail.ErrCramMD5AuthNotSupported,
		mail.ErrSCRAMSHA1AuthNotSupported,
		mail.ErrSCRAMSHA256AuthNotSupported,
		mail.ErrSCRAMSHA1PLUSAuthNotSupported,
		mail.ErrSCRAMSHA256PLUSAuthNotSupported,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// isCertificateError reports a failed verification of the server's
// certificate (as opposed to a handshake cut short by the network).
func isCertificateError(err error) bool {
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		cerr x509.CertificateInvalidError
	)
	return errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr)
}
