package receipt

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// MetaSignatureHeader carries the signature of every webhook POST Meta
// sends: "sha256=" and the hex HMAC-SHA256 of the raw body, keyed with the
// app secret.
const MetaSignatureHeader = "X-Hub-Signature-256"

// Errors of signature checks, for the receiver to answer with the right
// status code.
var (
	// ErrUnsigned: the request carries no signature at all.
	ErrUnsigned = errors.New("the request is not signed")
	// ErrBadSignature: the signature is malformed or does not match.
	ErrBadSignature = errors.New("the signature does not match")
)

// SignMeta returns the X-Hub-Signature-256 value of body under secret.
func SignMeta(body, secret []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifyMeta checks header, the X-Hub-Signature-256 of a webhook POST,
// against the raw body and the app secret, in constant time.
func VerifyMeta(body []byte, header string, secret []byte) error {
	if header == "" {
		return ErrUnsigned
	}
	hexSum, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(hexSum) != 2*sha256.Size {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return ErrBadSignature
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// MetaHandshake answers Meta's subscription check, the GET it sends when a
// callback URL is saved in the app dashboard:
// ?hub.mode=subscribe&hub.verify_token=<token>&hub.challenge=<challenge>.
// It returns the challenge to echo when the mode is subscribe and the
// token is the configured one (compared in constant time), and false
// otherwise.
func MetaHandshake(mode, token, challenge string, verifyToken []byte) (string, bool) {
	if mode != "subscribe" || len(verifyToken) == 0 || challenge == "" || len(challenge) > 256 {
		return "", false
	}
	if subtle.ConstantTimeCompare([]byte(token), verifyToken) != 1 {
		return "", false
	}
	return challenge, true
}

// MaxMetaStatuses bounds the statuses one webhook POST may carry. Meta
// batches a few at a time; a body with more is refused whole rather than
// making one request cost unbounded writes.
const MaxMetaStatuses = 100

// MetaStatus is one entry of a webhook's statuses, with the phone number
// of the business account it concerns.
type MetaStatus struct {
	Status
	// PhoneNumberID is metadata.phone_number_id of the change: the
	// sender number the message went out from.
	PhoneNumberID string
	// Raw is Meta's status word, for statuses Herald does not record
	// (State is empty then).
	Raw string
}

// The webhook document, as Meta documents it for the messages field. Only
// what receipts need is read; messages from users (value.messages) and
// other fields are skipped.
type metaWebhook struct {
	Object string `json:"object"`
	Entry  []struct {
		Changes []struct {
			Field string `json:"field"`
			Value struct {
				MessagingProduct string `json:"messaging_product"`
				Metadata         struct {
					PhoneNumberID string `json:"phone_number_id"`
				} `json:"metadata"`
				Statuses []struct {
					ID        string `json:"id"`
					Status    string `json:"status"`
					Timestamp string `json:"timestamp"`
					Errors    []struct {
						Code  int    `json:"code"`
						Title string `json:"title"`
					} `json:"errors"`
				} `json:"statuses"`
			} `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

// metaStates maps Meta's status words to receipt states. Others (deleted,
// warning, and any Meta adds) are reported with an empty State.
var metaStates = map[string]notifyv1.ReceiptState{
	"sent":      notifyv1.ReceiptSent,
	"delivered": notifyv1.ReceiptDelivered,
	"read":      notifyv1.ReceiptRead,
	"failed":    notifyv1.ReceiptFailed,
}

// ParseMeta reads the statuses of a webhook POST body. A body that is not
// a WhatsApp Business Account webhook is an error; one without statuses
// (an incoming message, say) yields none.
func ParseMeta(body []byte) ([]MetaStatus, error) {
	var w metaWebhook
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("the body is not a webhook document: %w", err)
	}
	if w.Object != "whatsapp_business_account" {
		return nil, fmt.Errorf("object %q is not whatsapp_business_account", truncate(w.Object, 64))
	}
	var out []MetaStatus
	for _, e := range w.Entry {
		for _, c := range e.Changes {
			if c.Field != "messages" {
				continue
			}
			for _, s := range c.Value.Statuses {
				if len(out) == MaxMetaStatuses {
					return nil, fmt.Errorf("more than %d statuses in one request", MaxMetaStatuses)
				}
				if s.ID == "" || len(s.ID) > 256 {
					return nil, errors.New("a status has no id, or one longer than 256 bytes")
				}
				ms := MetaStatus{PhoneNumberID: c.Value.Metadata.PhoneNumberID, Raw: truncate(s.Status, 32)}
				ms.MessageID = s.ID
				ms.State = metaStates[s.Status]
				if s.Timestamp != "" {
					sec, err := strconv.ParseInt(s.Timestamp, 10, 64)
					if err != nil || sec <= 0 || sec > 1<<40 {
						return nil, fmt.Errorf("status timestamp %q is not a Unix time", truncate(s.Timestamp, 32))
					}
					ms.Time = time.Unix(sec, 0).UTC()
				}
				if ms.State == notifyv1.ReceiptFailed && len(s.Errors) > 0 {
					ms.Code = s.Errors[0].Code
				}
				out = append(out, ms)
			}
		}
	}
	return out, nil
}
