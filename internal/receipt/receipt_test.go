package receipt

import (
	"testing"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/whatsapp"
)

func TestDecide(t *testing.T) {
	const (
		sent      = notifyv1.ReceiptSent
		delivered = notifyv1.ReceiptDelivered
		read      = notifyv1.ReceiptRead
		failed    = notifyv1.ReceiptFailed
		none      = notifyv1.ReceiptState("")
	)
	succeeded, failedPhase, pending := notifyv1.DeliverySucceeded, notifyv1.DeliveryFailed, notifyv1.DeliveryPending
	for _, tc := range []struct {
		phase   notifyv1.DeliveryPhase
		current notifyv1.ReceiptState
		next    notifyv1.ReceiptState
		want    Verdict
	}{
		{succeeded, none, sent, Apply},
		{succeeded, none, delivered, Apply},
		{succeeded, none, read, Apply},
		{succeeded, none, failed, Apply},
		{succeeded, sent, delivered, Apply},
		{succeeded, sent, read, Apply},
		{succeeded, delivered, read, Apply},
		// Out of order: never backwards.
		{succeeded, read, delivered, Stale},
		{succeeded, read, sent, Stale},
		{succeeded, delivered, sent, Stale},
		// A failure ends the message, but only before it was delivered.
		{succeeded, sent, failed, Apply},
		{succeeded, delivered, failed, Stale},
		{succeeded, read, failed, Stale},
		// Replays of what is recorded.
		{succeeded, sent, sent, Replay},
		{succeeded, read, read, Replay},
		{failedPhase, failed, failed, Replay},
		// Nothing after failed.
		{failedPhase, failed, delivered, Stale},
		{failedPhase, failed, read, Stale},
		// A delivery that does not stand on a sent message takes nothing.
		{pending, none, delivered, Stale},
		{pending, none, failed, Stale},
		{failedPhase, none, failed, Stale},
	} {
		var cur *notifyv1.DeliveryReceipt
		if tc.current != none {
			cur = &notifyv1.DeliveryReceipt{State: tc.current}
		}
		if got := Decide(tc.phase, cur, tc.next); got != tc.want {
			t.Errorf("Decide(%s, %q, %q) = %s, want %s", tc.phase, tc.current, tc.next, got, tc.want)
		}
	}
}

func TestRecord(t *testing.T) {
	received := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := received.Add(-time.Minute)
	for _, tc := range []struct {
		name       string
		st         Status
		failure    *channel.Error
		wantPhase  notifyv1.DeliveryPhase
		wantReason string
		wantCode   string
		wantTime   time.Time
		wantLast   notifyv1.FailureReason
	}{
		{name: "delivered keeps the delivery Succeeded", st: Status{State: notifyv1.ReceiptDelivered, Time: at},
			wantPhase: notifyv1.DeliverySucceeded, wantReason: notifyv1.ReasonDelivered, wantTime: at},
		{name: "no provider time: the time it arrived", st: Status{State: notifyv1.ReceiptRead},
			wantPhase: notifyv1.DeliverySucceeded, wantReason: notifyv1.ReasonDelivered, wantTime: received},
		{name: "131047 fails the delivery as the recipient's", st: Status{State: notifyv1.ReceiptFailed, Time: at, Code: 131047},
			failure: whatsapp.CloudReceiptError(131047), wantPhase: notifyv1.DeliveryFailed, wantReason: notifyv1.ReasonRecipientRejected,
			wantCode: "meta 131047", wantTime: at, wantLast: notifyv1.ReasonPermanent},
		{name: "131026 undeliverable", st: Status{State: notifyv1.ReceiptFailed, Time: at, Code: 131026},
			failure: whatsapp.CloudReceiptError(131026), wantPhase: notifyv1.DeliveryFailed, wantReason: notifyv1.ReasonRecipientRejected,
			wantCode: "meta 131026", wantTime: at, wantLast: notifyv1.ReasonPermanent},
		{name: "twilio 63016 outside the window", st: Status{State: notifyv1.ReceiptFailed, Code: 63016},
			failure: whatsapp.TwilioReceiptError(63016), wantPhase: notifyv1.DeliveryFailed, wantReason: notifyv1.ReasonRecipientRejected,
			wantCode: "twilio 63016", wantTime: received, wantLast: notifyv1.ReasonPermanent},
		{name: "twilio 63003 not on WhatsApp: InvalidAddress, failed not skipped", st: Status{State: notifyv1.ReceiptFailed, Code: 63003},
			failure: whatsapp.TwilioReceiptError(63003), wantPhase: notifyv1.DeliveryFailed, wantReason: string(notifyv1.ReasonInvalidAddress),
			wantCode: "twilio 63003", wantTime: received, wantLast: notifyv1.ReasonInvalidAddress},
		{name: "an unknown code is a permanent failure", st: Status{State: notifyv1.ReceiptFailed, Code: 999999},
			failure: whatsapp.CloudReceiptError(999999), wantPhase: notifyv1.DeliveryFailed, wantReason: notifyv1.ReasonPermanentFailure,
			wantCode: "meta 999999", wantTime: received, wantLast: notifyv1.ReasonPermanent},
		{name: "a throttled message failed later ends Failed too", st: Status{State: notifyv1.ReceiptFailed, Code: 130429},
			failure: whatsapp.CloudReceiptError(130429), wantPhase: notifyv1.DeliveryFailed, wantReason: notifyv1.ReasonPermanentFailure,
			wantCode: "meta 130429", wantTime: received, wantLast: notifyv1.ReasonRateLimited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := notifyv1.ChannelDeliveryStatus{Phase: notifyv1.DeliverySucceeded, Reason: notifyv1.ReasonDelivered, ProviderMessageID: "m"}
			Record(&s, tc.st, tc.failure, received)
			if s.Phase != tc.wantPhase || s.Reason != tc.wantReason {
				t.Errorf("phase %s reason %s, want %s %s", s.Phase, s.Reason, tc.wantPhase, tc.wantReason)
			}
			if s.Receipt == nil || s.Receipt.State != tc.st.State || s.Receipt.Code != tc.wantCode || !s.Receipt.Time.Time.Equal(tc.wantTime) {
				t.Errorf("receipt %+v, want state %s code %q time %s", s.Receipt, tc.st.State, tc.wantCode, tc.wantTime)
			}
			if s.LastErrorReason != tc.wantLast {
				t.Errorf("lastErrorReason %q, want %q", s.LastErrorReason, tc.wantLast)
			}
			if tc.wantPhase == notifyv1.DeliveryFailed && (s.Receipt.Reason == "" || s.LastError == "") {
				t.Errorf("a failure without its explanation: receipt %+v, lastError %q", s.Receipt, s.LastError)
			}
		})
	}
}

func TestClassifyCode(t *testing.T) {
	for _, tc := range []struct {
		code     string
		provider bool
		nilWant  bool
	}{
		{"meta 131031", true, false},
		{"meta 190", true, false},
		{"meta 131047", false, false},
		{"twilio 63007", true, false},
		{"twilio 63016", false, false},
		{"", false, true},
		{"meta", false, true},
		{"meta x", false, true},
		{"waha 1", false, true},
	} {
		ce := ClassifyCode(tc.code)
		if (ce == nil) != tc.nilWant || (ce != nil && ce.ProviderFault() != tc.provider) {
			t.Errorf("ClassifyCode(%q) = %v, want provider fault %v (nil %v)", tc.code, ce, tc.provider, tc.nilWant)
		}
	}
}
