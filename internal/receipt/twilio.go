package receipt

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// TwilioSignatureHeader carries the signature of every request Twilio
// sends to a callback URL.
const TwilioSignatureHeader = "X-Twilio-Signature"

// SignTwilio returns the X-Twilio-Signature of a form POST to fullURL: the
// base64 HMAC-SHA1, keyed with the account's auth token, of the URL
// followed by every POST parameter's name and value, sorted by name
// (byte order), values of a repeated name in sorted order.
func SignTwilio(fullURL string, form url.Values, authToken []byte) string {
	var b strings.Builder
	b.WriteString(fullURL)
	names := make([]string, 0, len(form))
	for k := range form {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		// A repeated name's values go in sorted order, each once, as
		// Twilio's own helper libraries compute it.
		vs := append([]string(nil), form[k]...)
		sort.Strings(vs)
		for _, v := range slices.Compact(vs) {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, authToken)
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// VerifyTwilio checks header, the X-Twilio-Signature of a form POST to
// fullURL, in constant time.
func VerifyTwilio(fullURL string, form url.Values, header string, authToken []byte) error {
	if header == "" {
		return ErrUnsigned
	}
	got, err := base64.StdEncoding.DecodeString(header)
	if err != nil || len(got) != sha1.Size {
		return ErrBadSignature
	}
	want, _ := base64.StdEncoding.DecodeString(SignTwilio(fullURL, form, authToken))
	if !hmac.Equal(got, want) {
		return ErrBadSignature
	}
	return nil
}

// TwilioStatus is one status callback.
type TwilioStatus struct {
	Status
	// AccountSID is the account that sent the message.
	AccountSID string
	// Raw is Twilio's MessageStatus, for statuses Herald does not record
	// (State is empty then).
	Raw string
}

// twilioStates maps MessageStatus values to receipt states. queued,
// accepted, scheduled and sending come before WhatsApp has the message,
// and canceled means Twilio never sent it: none is recorded.
var twilioStates = map[string]notifyv1.ReceiptState{
	"sent":        notifyv1.ReceiptSent,
	"delivered":   notifyv1.ReceiptDelivered,
	"read":        notifyv1.ReceiptRead,
	"failed":      notifyv1.ReceiptFailed,
	"undelivered": notifyv1.ReceiptFailed,
}

var twilioSIDRE = regexp.MustCompile(`^(SM|MM)[0-9a-fA-F]{32}$`)

// ParseTwilio reads a status callback's form parameters. Twilio sends no
// time with a status, so Time stays zero.
func ParseTwilio(form url.Values) (TwilioStatus, error) {
	sid := form.Get("MessageSid")
	if sid == "" {
		sid = form.Get("SmsSid")
	}
	if !twilioSIDRE.MatchString(sid) {
		return TwilioStatus{}, errors.New("MessageSid is missing or not a message SID")
	}
	raw := form.Get("MessageStatus")
	if raw == "" {
		raw = form.Get("SmsStatus")
	}
	if raw == "" {
		return TwilioStatus{}, errors.New("MessageStatus is missing")
	}
	ts := TwilioStatus{AccountSID: form.Get("AccountSid"), Raw: truncate(raw, 32)}
	ts.MessageID = sid
	ts.State = twilioStates[raw]
	if ts.State == notifyv1.ReceiptFailed {
		if c := form.Get("ErrorCode"); c != "" {
			n, err := strconv.Atoi(c)
			if err != nil || n < 0 || n > 1_000_000 {
				return TwilioStatus{}, fmt.Errorf("ErrorCode %q is not a Twilio error code", truncate(c, 32))
			}
			ts.Code = n
		}
	}
	return ts, nil
}
