// Package receipt is the pure core of delivery receipts: it reads the
// status callbacks WhatsApp providers send after a message was accepted
// (Meta's webhook, meta.go; Twilio's status callback, twilio.go), checks
// their signatures, and decides what a callback does to the delivery it
// names (this file). It has no clients and no clock of its own; package
// internal/receiver serves it over HTTP and writes the outcome.
package receipt

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/whatsapp"
)

// Status is one provider report about one message, in the provider's
// terms reduced to Herald's: the state, when it was reached and, for a
// failure, the provider's error code.
type Status struct {
	// MessageID is the provider message ID the send answered with (a Meta
	// wamid, a Twilio SM... SID).
	MessageID string
	State     notifyv1.ReceiptState
	// Time is when the provider says the state was reached; zero when the
	// callback carries no time (Twilio).
	Time time.Time
	// Code is the provider's error code of a failed message; zero when
	// there is none.
	Code int
}

// Verdict is what a status does to a delivery.
type Verdict int

const (
	// Apply records the status: it moves the receipt forward.
	Apply Verdict = iota
	// Replay is a status the delivery already records: the callback was
	// sent again, or replayed. Nothing is written.
	Replay
	// Stale is a status behind the one recorded (delivered after read,
	// anything after failed, a failure after the message was delivered),
	// or one for a delivery that no longer stands on a sent message.
	// Nothing is written.
	Stale
)

func (v Verdict) String() string {
	switch v {
	case Apply:
		return "Apply"
	case Replay:
		return "Replay"
	case Stale:
		return "Stale"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// rank orders the states a message moves through. failed has no rank of
// its own: it follows only sent (see Decide).
var rank = map[notifyv1.ReceiptState]int{
	notifyv1.ReceiptSent:      1,
	notifyv1.ReceiptDelivered: 2,
	notifyv1.ReceiptRead:      3,
}

// Decide says what a status reporting state next does to a delivery in
// phase with receipt current (nil: none yet).
//
// Receipts only move forward: sent, delivered, read. Providers do not
// promise to call back in order, so a status behind the recorded one is
// Stale, not an error. failed ends the message: nothing applies after it.
// A failure reported after delivered or read is Stale too: the handset
// confirmed the message, and a delivery that reached its recipient is not
// turned Failed by a later, contradictory report.
//
// Only a Succeeded delivery takes a new receipt: its providerMessageID is
// the message the status is about. A delivery in any other phase (failed
// by an earlier receipt, reset by an operator for another attempt) no
// longer stands on that message.
func Decide(phase notifyv1.DeliveryPhase, current *notifyv1.DeliveryReceipt, next notifyv1.ReceiptState) Verdict {
	if current != nil && current.State == next {
		return Replay
	}
	if phase != notifyv1.DeliverySucceeded {
		return Stale
	}
	if current == nil {
		return Apply
	}
	if next == notifyv1.ReceiptFailed {
		if current.State == notifyv1.ReceiptSent {
			return Apply
		}
		return Stale
	}
	if current.State == notifyv1.ReceiptFailed || rank[next] <= rank[current.State] {
		return Stale
	}
	return Apply
}

// Failure is the classified error of a failed status (from
// whatsapp.CloudReceiptError or whatsapp.TwilioReceiptError).
type Failure = channel.Error

// Record writes an applied status into the delivery's status. received is
// when the callback arrived; it stands for the status time when the
// provider gave none. A failed status, with its classified error, also
// ends the delivery Failed with the reason the send path gives the same
// provider code, so the Notification counts it as failed.
func Record(s *notifyv1.ChannelDeliveryStatus, st Status, failure *Failure, received time.Time) {
	at := st.Time
	if at.IsZero() {
		at = received
	}
	r := &notifyv1.DeliveryReceipt{State: st.State, Time: metav1.NewTime(at.UTC().Truncate(time.Second))}
	if st.State == notifyv1.ReceiptFailed {
		if failure != nil {
			r.Code = failure.Code
			r.Reason = truncate(failure.Err.Error(), 1024)
			s.Phase = notifyv1.DeliveryFailed
			s.Reason = FailedReason(failure)
			s.LastError = truncate(failure.Error(), 1024)
			s.LastErrorReason = failure.Reason
			s.Message = truncate("the provider accepted the message, then reported it failed: "+failure.Error(), 1024)
		}
	}
	s.Receipt = r
}

// FailedReason is the status.reason of a delivery failed by a receipt:
// the reason the delivery controller gives the same error at send time,
// except that a number the provider cannot reach ends Failed with
// InvalidAddress rather than Skipped, since the message was sent.
func FailedReason(ce *channel.Error) string {
	switch {
	case ce.Reason == notifyv1.ReasonInvalidAddress:
		return string(notifyv1.ReasonInvalidAddress)
	case ce.RecipientFault():
		return notifyv1.ReasonRecipientRejected
	}
	return notifyv1.ReasonPermanentFailure
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// ClassifyCode classifies a receipt's recorded code ("meta 131031",
// "twilio 63016") as its status callback was classified, so that the
// controller can act on a failure the receiver recorded (a provider fault
// opens the provider's circuit). It returns nil for a code it cannot read.
func ClassifyCode(code string) *channel.Error {
	api, num, ok := strings.Cut(code, " ")
	if !ok {
		return nil
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 {
		return nil
	}
	switch api {
	case "meta":
		return whatsapp.CloudReceiptError(n)
	case "twilio":
		return whatsapp.TwilioReceiptError(n)
	}
	return nil
}
