package receipt

import (
	"net/url"
	"strings"
	"testing"
)

func FuzzParseMeta(f *testing.F) {
	f.Add([]byte(metaFailed))
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"statuses":[{"id":"x","status":"read","timestamp":"1"}]}}]}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := ParseMeta(body)
		if err != nil {
			return
		}
		if len(got) > MaxMetaStatuses {
			t.Fatalf("%d statuses, more than %d", len(got), MaxMetaStatuses)
		}
		for _, s := range got {
			if s.MessageID == "" || len(s.MessageID) > 256 {
				t.Fatalf("status with id %q", s.MessageID)
			}
			if s.State != "" && metaStates[s.Raw] != s.State {
				t.Fatalf("status %q read as %q", s.Raw, s.State)
			}
			if s.Code != 0 && s.State != "failed" {
				t.Fatalf("error code %d on a %q status", s.Code, s.State)
			}
		}
	})
}

func FuzzParseTwilio(f *testing.F) {
	f.Add("MessageSid=SM0123456789abcdef0123456789abcdef&MessageStatus=undelivered&ErrorCode=63016")
	f.Add("SmsSid=SM0123456789abcdef0123456789abcdef&SmsStatus=read")
	f.Add("MessageStatus=failed&ErrorCode=-1")
	f.Fuzz(func(t *testing.T, query string) {
		form, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		got, err := ParseTwilio(form)
		if err != nil {
			return
		}
		if !twilioSIDRE.MatchString(got.MessageID) {
			t.Fatalf("accepted message id %q", got.MessageID)
		}
		if got.Code < 0 || (got.Code != 0 && got.State != "failed") {
			t.Fatalf("code %d with state %q", got.Code, got.State)
		}
	})
}

// A signature verifies exactly the body and secret it was made with.
func FuzzVerifyMeta(f *testing.F) {
	f.Add([]byte(metaFailed), []byte("secret"), "sha256=00")
	f.Fuzz(func(t *testing.T, body, secret []byte, header string) {
		if err := VerifyMeta(body, SignMeta(body, secret), secret); err != nil {
			t.Fatalf("own signature refused: %v", err)
		}
		// Hex digits may come in either case; any other header fails.
		if VerifyMeta(body, header, secret) == nil && "sha256="+strings.ToLower(strings.TrimPrefix(header, "sha256=")) != SignMeta(body, secret) {
			t.Fatalf("header %q accepted", header)
		}
		if len(body) > 0 && VerifyMeta(body[1:], SignMeta(body, secret), secret) == nil {
			t.Fatal("a signature verified a shorter body")
		}
	})
}

func FuzzVerifyTwilio(f *testing.F) {
	f.Add("https://h.example/receipts/twilio/ns/p", "MessageSid=SM1&MessageStatus=read", []byte("tok"), "abc=")
	f.Fuzz(func(t *testing.T, u, query string, token []byte, header string) {
		form, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		sig := SignTwilio(u, form, token)
		if err := VerifyTwilio(u, form, sig, token); err != nil {
			t.Fatalf("own signature refused: %v", err)
		}
		if header != sig && VerifyTwilio(u, form, header, token) == nil {
			t.Fatalf("header %q accepted for signature %q", header, sig)
		}
		if VerifyTwilio(u+"/", form, sig, token) == nil {
			t.Fatal("a signature verified another URL")
		}
	})
}
