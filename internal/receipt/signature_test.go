package receipt

import (
	"net/url"
	"strings"
	"testing"
)

// The expected values were computed outside Go, with openssl dgst -hmac,
// from the byte strings the providers document.
func TestSignMetaKnownValue(t *testing.T) {
	body := []byte(`{"object":"whatsapp_business_account"}`)
	want := "sha256=0bf7374433906636bed1653bc7c64affb42fa5da9a39e251ab95c2e3a9c06923"
	if got := SignMeta(body, []byte("app-secret")); got != want {
		t.Fatalf("SignMeta = %s, want %s", got, want)
	}
	if err := VerifyMeta(body, want, []byte("app-secret")); err != nil {
		t.Fatalf("VerifyMeta of its own signature: %v", err)
	}
}

func TestSignTwilioKnownValue(t *testing.T) {
	// Sorted by name, a repeated name's values sorted: the signed string is
	// https://example.com/receipts/twilio/ns/p?x=1AccountSidAC0123MessageSid...MessageStatusfailedZa1Za2
	form := url.Values{
		"MessageStatus": {"failed"},
		"Z":             {"a2", "a1"},
		"MessageSid":    {"SM0123456789abcdef0123456789abcdef"},
		"AccountSid":    {"AC0123"},
	}
	want := "RtLlsW3TvoDjTSHvsTPDag21TZM="
	if got := SignTwilio("https://example.com/receipts/twilio/ns/p?x=1", form, []byte("tok")); got != want {
		t.Fatalf("SignTwilio = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"object":"whatsapp_business_account","entry":[]}`)
	secret := []byte("s3cret")
	good := SignMeta(body, secret)
	for _, tc := range []struct {
		name, header string
		body         []byte
		secret       []byte
		want         error
	}{
		{"good", good, body, secret, nil},
		{"unsigned", "", body, secret, ErrUnsigned},
		{"other secret", good, body, []byte("other"), ErrBadSignature},
		{"body changed", good, append([]byte(" "), body...), secret, ErrBadSignature},
		{"sha1 prefix", "sha1=" + strings.TrimPrefix(good, "sha256="), body, secret, ErrBadSignature},
		{"short", good[:20], body, secret, ErrBadSignature},
		{"not hex", "sha256=" + strings.Repeat("zz", 32), body, secret, ErrBadSignature},
		{"upper-case hex", "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), body, secret, nil},
	} {
		if err := VerifyMeta(tc.body, tc.header, tc.secret); err != tc.want {
			t.Errorf("meta %s: %v, want %v", tc.name, err, tc.want)
		}
	}

	u := "https://hooks.example.com/receipts/twilio/team-a/twilio"
	form := url.Values{"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "MessageStatus": {"delivered"}}
	sig := SignTwilio(u, form, secret)
	changed := url.Values{"MessageSid": form["MessageSid"], "MessageStatus": {"failed"}}
	for _, tc := range []struct {
		name, url, header string
		form              url.Values
		want              error
	}{
		{"good", u, sig, form, nil},
		{"unsigned", u, "", form, ErrUnsigned},
		{"another URL", u + "x", sig, form, ErrBadSignature},
		{"status changed", u, sig, changed, ErrBadSignature},
		{"not base64", u, "!!!", form, ErrBadSignature},
	} {
		if err := VerifyTwilio(tc.url, tc.form, tc.header, secret); err != tc.want {
			t.Errorf("twilio %s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestMetaHandshake(t *testing.T) {
	token := []byte("verify-me")
	for _, tc := range []struct {
		mode, token, challenge string
		ok                     bool
	}{
		{"subscribe", "verify-me", "1158201444", true},
		{"subscribe", "wrong", "1158201444", false},
		{"unsubscribe", "verify-me", "1158201444", false},
		{"subscribe", "verify-me", "", false},
		{"subscribe", "verify-me", strings.Repeat("9", 257), false},
	} {
		got, ok := MetaHandshake(tc.mode, tc.token, tc.challenge, token)
		if ok != tc.ok || (ok && got != tc.challenge) {
			t.Errorf("MetaHandshake(%q, %q, %.10q) = %q, %v; want ok=%v", tc.mode, tc.token, tc.challenge, got, ok, tc.ok)
		}
	}
	if _, ok := MetaHandshake("subscribe", "", "1", nil); ok {
		t.Error("an empty verify token must never match")
	}
}
