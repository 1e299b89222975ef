package providerfake

import (
	"testing"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/receipt"
)

// The fakes sign callbacks with code of their own; Herald's verifier and
// parsers must accept exactly what they send.
func TestCallbacksMatchHeraldsVerifier(t *testing.T) {
	m := &Meta{PhoneNumberID: "106540352242922", AppSecret: "app-secret", Server: &Server{changed: make(chan struct{})}}
	body := m.StatusWebhook(MetaStatus{MessageID: "wamid.X", Status: "failed", ErrorCode: 131047, RecipientID: "4915112345678"})
	if err := receipt.VerifyMeta(body, m.SignWebhook(body), []byte("app-secret")); err != nil {
		t.Fatalf("Meta webhook signature: %v", err)
	}
	got, err := receipt.ParseMeta(body)
	if err != nil || len(got) != 1 || got[0].State != notifyv1.ReceiptFailed || got[0].Code != 131047 || got[0].PhoneNumberID != m.PhoneNumberID {
		t.Fatalf("ParseMeta: %+v, %v", got, err)
	}

	tw := &Twilio{AccountSID: "AC1", AuthToken: "tok", From: "+14155238886", Server: &Server{changed: make(chan struct{})}}
	sid := "SM0123456789abcdef0123456789abcdef"
	form := tw.StatusForm(TwilioStatus{MessageSID: sid, Status: "undelivered", ErrorCode: 63016})
	u := "https://hooks.example.com/receipts/twilio/team-a/twilio"
	if err := receipt.VerifyTwilio(u, form, tw.SignCallback(u, form), []byte("tok")); err != nil {
		t.Fatalf("Twilio callback signature: %v", err)
	}
	ts, err := receipt.ParseTwilio(form)
	if err != nil || ts.MessageID != sid || ts.State != notifyv1.ReceiptFailed || ts.Code != 63016 || ts.AccountSID != "AC1" {
		t.Fatalf("ParseTwilio: %+v, %v", ts, err)
	}
}
