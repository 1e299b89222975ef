package receipt

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// metaFailed is a status webhook in the shape Meta documents.
const metaFailed = `{
  "object": "whatsapp_business_account",
  "entry": [{
    "id": "102290129340398",
    "changes": [{
      "field": "messages",
      "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "statuses": [
          {"id": "wamid.A", "status": "delivered", "timestamp": "1764583200", "recipient_id": "4915112345678"},
          {"id": "wamid.B", "status": "failed", "timestamp": "1764583201", "recipient_id": "4915112345678",
           "errors": [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
                       "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}]},
          {"id": "wamid.C", "status": "deleted", "timestamp": "1764583202", "recipient_id": "4915112345678"}
        ]
      }
    }]
  }]
}`

func TestParseMeta(t *testing.T) {
	got, err := ParseMeta([]byte(metaFailed))
	if err != nil {
		t.Fatal(err)
	}
	want := []MetaStatus{
		{Status: Status{MessageID: "wamid.A", State: notifyv1.ReceiptDelivered, Time: time.Unix(1764583200, 0).UTC()}, PhoneNumberID: "106540352242922", Raw: "delivered"},
		{Status: Status{MessageID: "wamid.B", State: notifyv1.ReceiptFailed, Time: time.Unix(1764583201, 0).UTC(), Code: 131047}, PhoneNumberID: "106540352242922", Raw: "failed"},
		{Status: Status{MessageID: "wamid.C", Time: time.Unix(1764583202, 0).UTC()}, PhoneNumberID: "106540352242922", Raw: "deleted"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ParseMeta:\n got %+v\nwant %+v", got, want)
	}

	many := `{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"statuses":[` +
		strings.TrimSuffix(strings.Repeat(`{"id":"x","status":"sent"},`, MaxMetaStatuses+1), ",") + `]}}]}]}`
	for name, body := range map[string]string{
		"not JSON":          "status=failed",
		"another object":    `{"object":"page","entry":[]}`,
		"bad timestamp":     `{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"statuses":[{"id":"x","status":"sent","timestamp":"yesterday"}]}}]}]}`,
		"status without id": `{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"statuses":[{"status":"sent"}]}}]}]}`,
		"too many statuses": many,
	} {
		if _, err := ParseMeta([]byte(body)); err == nil {
			t.Errorf("%s: ParseMeta accepted it", name)
		}
	}
	// A message from a user, or another field, carries no statuses.
	if got, err := ParseMeta([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"id":"in"}]}}]}]}`)); err != nil || len(got) != 0 {
		t.Errorf("incoming message: %v, %v; want no statuses", got, err)
	}
}

func TestParseTwilio(t *testing.T) {
	sid := "SM" + strings.Repeat("ab", 16)
	for _, tc := range []struct {
		name  string
		form  url.Values
		state notifyv1.ReceiptState
		code  int
		err   bool
	}{
		{"delivered", url.Values{"MessageSid": {sid}, "MessageStatus": {"delivered"}, "AccountSid": {"AC1"}}, notifyv1.ReceiptDelivered, 0, false},
		{"read", url.Values{"MessageSid": {sid}, "MessageStatus": {"read"}}, notifyv1.ReceiptRead, 0, false},
		{"undelivered 63016", url.Values{"MessageSid": {sid}, "MessageStatus": {"undelivered"}, "ErrorCode": {"63016"}}, notifyv1.ReceiptFailed, 63016, false},
		{"failed 63003", url.Values{"MessageSid": {sid}, "MessageStatus": {"failed"}, "ErrorCode": {"63003"}}, notifyv1.ReceiptFailed, 63003, false},
		{"queued is not recorded", url.Values{"MessageSid": {sid}, "MessageStatus": {"queued"}}, "", 0, false},
		{"legacy Sms names", url.Values{"SmsSid": {sid}, "SmsStatus": {"sent"}}, notifyv1.ReceiptSent, 0, false},
		{"no sid", url.Values{"MessageStatus": {"sent"}}, "", 0, true},
		{"bad sid", url.Values{"MessageSid": {"SMxyz"}, "MessageStatus": {"sent"}}, "", 0, true},
		{"no status", url.Values{"MessageSid": {sid}}, "", 0, true},
		{"bad code", url.Values{"MessageSid": {sid}, "MessageStatus": {"failed"}, "ErrorCode": {"x"}}, "", 0, true},
	} {
		got, err := ParseTwilio(tc.form)
		if (err != nil) != tc.err {
			t.Errorf("%s: err %v, want error %v", tc.name, err, tc.err)
			continue
		}
		if err == nil && (got.State != tc.state || got.Code != tc.code || got.MessageID != sid) {
			t.Errorf("%s: %+v, want state %q code %d", tc.name, got, tc.state, tc.code)
		}
	}
}
