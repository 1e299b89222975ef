package receiver

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/receipt"
)

const (
	testNS     = "team-a"
	appSecret  = "app-secret"
	authToken  = "auth-token"
	accountSID = "AC0123456789abcdef0123456789abcdef"
	messageID  = "wamid.one"
	twilioSID  = "SM0123456789abcdef0123456789abcdef"
)

// newTestServer is a receiver over a fake client holding two providers
// with receipts, their Secrets and one sent delivery per provider.
func newTestServer(t *testing.T, opts Options, objs ...client.Object) (*Server, client.Client) {
	t.Helper()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = notifyv1.AddToScheme(scheme)
	label := map[string]string{notifyv1.LabelProviderSecret: "true"}
	sent := func(name, provider, id string) *notifyv1.ChannelDelivery {
		return &notifyv1.ChannelDelivery{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS},
			Spec:       notifyv1.ChannelDeliverySpec{Notification: "n", Channel: notifyv1.ChannelWhatsApp, Recipient: notifyv1.RecipientSnapshot{Name: "jo"}},
			Status:     notifyv1.ChannelDeliveryStatus{Phase: notifyv1.DeliverySucceeded, Provider: provider, ProviderMessageID: id},
		}
	}
	objs = append(objs,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "meta", Namespace: testNS, Labels: label}, Data: map[string][]byte{"appSecret": []byte(appSecret), "verifyToken": []byte("vt")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "twilio", Namespace: testNS, Labels: label}, Data: map[string][]byte{"authToken": []byte(authToken)}},
		&notifyv1.NotificationProvider{ObjectMeta: metav1.ObjectMeta{Name: "cloud", Namespace: testNS}, Spec: notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelWhatsApp, WhatsApp: &notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppCloud, PhoneNumberID: "1",
				Receipts: &notifyv1.WhatsAppReceipts{AppSecretRef: &notifyv1.SecretKeyReference{Name: "meta", Key: "appSecret"},
					VerifyTokenRef: &notifyv1.SecretKeyReference{Name: "meta", Key: "verifyToken"}}}}},
		&notifyv1.NotificationProvider{ObjectMeta: metav1.ObjectMeta{Name: "twilio", Namespace: testNS}, Spec: notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelWhatsApp, WhatsApp: &notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppTwilio, AccountSID: accountSID,
				CredentialsSecretRef: &notifyv1.SecretReference{Name: "twilio"}, Receipts: &notifyv1.WhatsAppReceipts{}}}},
		sent("d-cloud", "cloud", messageID),
		sent("d-twilio", "twilio", twilioSID),
	)
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithStatusSubresource(&notifyv1.ChannelDelivery{}).
		WithIndex(&notifyv1.ChannelDelivery{}, MessageIDIndex, func(o client.Object) []string {
			return []string{o.(*notifyv1.ChannelDelivery).Status.ProviderMessageID}
		}).Build()
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	s := &Server{Client: c, APIReader: c, Scheme: scheme, Recorder: &events.FakeRecorder{},
		Clock: clocktesting.NewFakePassiveClock(time.Now()), Options: opts}
	return s, c
}

func metaBody(status string, code int) []byte {
	errs := ""
	if code != 0 {
		errs = `,"errors":[{"code":` + strconv.Itoa(code) + `}]`
	}
	return []byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"1"},"statuses":[{"id":"` +
		messageID + `","status":"` + status + `"` + errs + `}]}}]}]}`)
}

func postMeta(h http.Handler, path string, body []byte, sig string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/json")
	if sig != "" {
		r.Header.Set(receipt.MetaSignatureHeader, sig)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestMetaCallbackAnswers(t *testing.T) {
	s, c := newTestServer(t, DefaultOptions())
	h := s.Handler()
	path := "/receipts/meta/" + testNS + "/cloud"
	failed := metaBody("failed", 131047)
	for _, tc := range []struct {
		name string
		path string
		body []byte
		sig  string
		want int
	}{
		{"unsigned", path, failed, "", http.StatusUnauthorized},
		{"forged", path, failed, receipt.SignMeta(failed, []byte("guess")), http.StatusForbidden},
		{"not a name", "/receipts/meta/Team_A/cloud", failed, receipt.SignMeta(failed, []byte(appSecret)), http.StatusNotFound},
		{"twilio provider on the meta URL", "/receipts/meta/" + testNS + "/twilio", failed, receipt.SignMeta(failed, []byte(appSecret)), http.StatusNotFound},
		{"signed but not a webhook", path, []byte(`{"object":"page"}`), receipt.SignMeta([]byte(`{"object":"page"}`), []byte(appSecret)), http.StatusBadRequest},
	} {
		if w := postMeta(h, tc.path, tc.body, tc.sig); w.Code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, w.Code, w.Body, tc.want)
		}
	}
	var d notifyv1.ChannelDelivery
	_ = c.Get(t.Context(), client.ObjectKey{Namespace: testNS, Name: "d-cloud"}, &d)
	if d.Status.Receipt != nil || d.Status.Phase != notifyv1.DeliverySucceeded {
		t.Fatalf("a refused callback changed the delivery: %+v", d.Status)
	}

	if w := postMeta(h, path, failed, receipt.SignMeta(failed, []byte(appSecret))); w.Code != http.StatusOK {
		t.Fatalf("signed failure: %d %s", w.Code, w.Body)
	}
	_ = c.Get(t.Context(), client.ObjectKey{Namespace: testNS, Name: "d-cloud"}, &d)
	if d.Status.Phase != notifyv1.DeliveryFailed || d.Status.Receipt == nil || d.Status.Receipt.Code != "meta 131047" {
		t.Fatalf("after a signed failure: %+v", d.Status)
	}
	if w := postMeta(h, path, failed, receipt.SignMeta(failed, []byte(appSecret))); w.Code != http.StatusConflict {
		t.Fatalf("replay: %d %s, want 409", w.Code, w.Body)
	}
}

func TestBodyBound(t *testing.T) {
	opts := DefaultOptions()
	opts.MaxBodyBytes = 1024
	s, _ := newTestServer(t, opts)
	big := []byte(`{"object":"whatsapp_business_account","pad":"` + strings.Repeat("x", 2048) + `"}`)
	if w := postMeta(s.Handler(), "/receipts/meta/"+testNS+"/cloud", big, receipt.SignMeta(big, []byte(appSecret))); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("%d %s, want 413", w.Code, w.Body)
	}
}

func TestInFlightBound(t *testing.T) {
	opts := DefaultOptions()
	opts.MaxInFlight = 1
	s, _ := newTestServer(t, opts)
	h := s.Handler()
	s.inFlight <- struct{}{} // one callback in progress
	body := metaBody("read", 0)
	w := postMeta(h, "/receipts/meta/"+testNS+"/cloud", body, receipt.SignMeta(body, []byte(appSecret)))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("%d %s, want 503 with Retry-After", w.Code, w.Body)
	}
	<-s.inFlight
	if w := postMeta(h, "/receipts/meta/"+testNS+"/cloud", body, receipt.SignMeta(body, []byte(appSecret))); w.Code != http.StatusOK {
		t.Fatalf("after the slot freed: %d %s", w.Code, w.Body)
	}
}

func TestNamespaceRate(t *testing.T) {
	opts := DefaultOptions()
	opts.NamespaceRate, opts.NamespaceBurst = 0.001, 1
	s, _ := newTestServer(t, opts)
	h := s.Handler()
	body := metaBody("delivered", 0)
	if w := postMeta(h, "/receipts/meta/"+testNS+"/cloud", body, receipt.SignMeta(body, []byte(appSecret))); w.Code != http.StatusOK {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}
	body = metaBody("read", 0)
	if w := postMeta(h, "/receipts/meta/"+testNS+"/cloud", body, receipt.SignMeta(body, []byte(appSecret))); w.Code != http.StatusTooManyRequests {
		t.Fatalf("second: %d %s, want 429", w.Code, w.Body)
	}
	// Unsigned callbacks never reach the bucket, so they cannot use up a
	// namespace's rate.
	l := newNamespaceLimits(rate.Limit(1), 1)
	if !l.allow("a", 1, time.Now()) || l.allow("a", 1, time.Now()) || !l.allow("b", 1, time.Now()) {
		t.Fatal("buckets are not per namespace")
	}
}

func TestTwilioCallback(t *testing.T) {
	opts := DefaultOptions()
	opts.PublicURL = "https://hooks.example.com"
	s, c := newTestServer(t, opts)
	h := s.Handler()
	path := "/receipts/twilio/" + testNS + "/twilio"
	form := url.Values{"MessageSid": {twilioSID}, "MessageStatus": {"undelivered"}, "ErrorCode": {"63016"}, "AccountSid": {accountSID}}
	send := func(sig string, f url.Values) int {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(f.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if sig != "" {
			r.Header.Set(receipt.TwilioSignatureHeader, sig)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if got := send("", form); got != http.StatusUnauthorized {
		t.Errorf("unsigned: %d", got)
	}
	// Signed for the URL the receiver sees, not the public one Twilio called.
	if got := send(receipt.SignTwilio("http://example.com"+path, form, []byte(authToken)), form); got != http.StatusForbidden {
		t.Errorf("signed for the internal URL: %d", got)
	}
	other := url.Values{"MessageSid": {twilioSID}, "MessageStatus": {"failed"}, "ErrorCode": {"63016"}, "AccountSid": {"AC" + strings.Repeat("f", 32)}}
	if got := send(receipt.SignTwilio(opts.PublicURL+path, other, []byte(authToken)), other); got != http.StatusNotFound {
		t.Errorf("another account's message: %d", got)
	}
	if got := send(receipt.SignTwilio(opts.PublicURL+path, form, []byte(authToken)), form); got != http.StatusOK {
		t.Fatalf("signed: %d", got)
	}
	var d notifyv1.ChannelDelivery
	_ = c.Get(t.Context(), client.ObjectKey{Namespace: testNS, Name: "d-twilio"}, &d)
	if d.Status.Phase != notifyv1.DeliveryFailed || d.Status.Reason != notifyv1.ReasonRecipientRejected || d.Status.Receipt.Code != "twilio 63016" {
		t.Fatalf("after 63016: %+v", d.Status)
	}
}

// One Meta app calls one URL for all its phone numbers: a status of
// another number goes to the provider of this namespace that sends from it
// with the same app secret, and to no one else.
func TestMetaStatusOfAnotherNumberOfTheSameApp(t *testing.T) {
	label := map[string]string{notifyv1.LabelProviderSecret: "true"}
	cloud := func(name, phone, secret string) client.Object {
		return &notifyv1.NotificationProvider{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS}, Spec: notifyv1.NotificationProviderSpec{
			Channel: notifyv1.ChannelWhatsApp, WhatsApp: &notifyv1.WhatsAppProvider{API: notifyv1.WhatsAppCloud, PhoneNumberID: phone,
				Receipts: &notifyv1.WhatsAppReceipts{AppSecretRef: &notifyv1.SecretKeyReference{Name: secret, Key: "appSecret"},
					VerifyTokenRef: &notifyv1.SecretKeyReference{Name: secret, Key: "verifyToken"}}}}}
	}
	sentBy := func(name, provider, id string) client.Object {
		return &notifyv1.ChannelDelivery{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS},
			Spec:       notifyv1.ChannelDeliverySpec{Notification: "n", Channel: notifyv1.ChannelWhatsApp},
			Status:     notifyv1.ChannelDeliveryStatus{Phase: notifyv1.DeliverySucceeded, Provider: provider, ProviderMessageID: id},
		}
	}
	s, c := newTestServer(t, DefaultOptions(),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "other-app", Namespace: testNS, Labels: label}, Data: map[string][]byte{"appSecret": []byte("other")}},
		cloud("cloud-2", "2", "meta"), cloud("cloud-3", "3", "other-app"),
		sentBy("d-2", "cloud-2", "wamid.two"), sentBy("d-3", "cloud-3", "wamid.three"))
	h := s.Handler()
	body := func(phone, id string) []byte {
		return []byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"` +
			phone + `"},"statuses":[{"id":"` + id + `","status":"read"}]}}]}]}`)
	}
	if w := postMeta(h, "/receipts/meta/"+testNS+"/cloud", body("2", "wamid.two"), receipt.SignMeta(body("2", "wamid.two"), []byte(appSecret))); w.Code != http.StatusOK {
		t.Fatalf("same app: %d %s", w.Code, w.Body)
	}
	if w := postMeta(h, "/receipts/meta/"+testNS+"/cloud", body("3", "wamid.three"), receipt.SignMeta(body("3", "wamid.three"), []byte(appSecret))); w.Code != http.StatusNotFound {
		t.Fatalf("another app's number: %d %s, want 404", w.Code, w.Body)
	}
	for name, want := range map[string]bool{"d-2": true, "d-3": false} {
		var d notifyv1.ChannelDelivery
		_ = c.Get(t.Context(), client.ObjectKey{Namespace: testNS, Name: name}, &d)
		if (d.Status.Receipt != nil) != want {
			t.Errorf("%s: receipt %+v, want one: %v", name, d.Status.Receipt, want)
		}
	}
}
