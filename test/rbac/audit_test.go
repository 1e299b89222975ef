package rbac

import (
	"strings"
	"testing"
)

// TestForbidden checks the audit log reader on made-up lines, so that the
// suite cannot pass by finding nothing.
func TestForbidden(t *testing.T) {
	log := strings.Join([]string{
		// Refused, impersonated: reported.
		`{"stage":"ResponseComplete","verb":"list","requestURI":"/api/v1/secrets","user":{"username":"admin"},"impersonatedUser":{"username":"system:serviceaccount:herald-system:herald-controller"},"objectRef":{"resource":"secrets","apiVersion":"v1"},"responseStatus":{"code":403,"message":"secrets is forbidden"}}`,
		// The same again: reported once.
		`{"stage":"ResponseComplete","verb":"list","requestURI":"/api/v1/secrets?x","user":{"username":"admin"},"impersonatedUser":{"username":"system:serviceaccount:herald-system:herald-controller"},"objectRef":{"resource":"secrets","apiVersion":"v1"},"responseStatus":{"code":403,"message":"secrets is forbidden"}}`,
		// Refused, made directly, with a subresource, group and name.
		`{"stage":"ResponseComplete","verb":"patch","requestURI":"/apis/notify.herald.dev/v1alpha1/namespaces/t/channeldeliveries/d/status","user":{"username":"system:serviceaccount:herald-system:herald-inbox"},"objectRef":{"resource":"channeldeliveries","subresource":"status","namespace":"t","name":"d","apiGroup":"notify.herald.dev"},"responseStatus":{"code":403}}`,
		// Allowed: ignored.
		`{"stage":"ResponseComplete","verb":"get","user":{"username":"system:serviceaccount:herald-system:herald-inbox"},"responseStatus":{"code":200}}`,
		// Someone else refused: ignored.
		`{"stage":"ResponseComplete","verb":"get","user":{"username":"alice"},"responseStatus":{"code":403}}`,
		// Not the final stage: ignored.
		`{"stage":"ResponseStarted","verb":"watch","user":{"username":"system:serviceaccount:herald-system:herald-inbox"},"responseStatus":{"code":403}}`,
	}, "\n")
	got, err := forbidden(strings.NewReader(log), []string{"system:serviceaccount:herald-system:herald-controller", "system:serviceaccount:herald-system:herald-inbox"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"system:serviceaccount:herald-system:herald-controller: list secrets (secrets is forbidden)",
		"system:serviceaccount:herald-system:herald-inbox: patch channeldeliveries/status.notify.herald.dev in namespace t named d ()",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := forbidden(strings.NewReader("not json"), nil); err == nil {
		t.Error("a broken audit log went unnoticed")
	}
}
