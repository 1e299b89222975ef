package kubectlherald

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func TestWriteTree(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n := &notifyv1.Notification{}
	n.Namespace, n.Name = "shop", "disk-full"
	n.Status.Phase = notifyv1.NotificationDispatching
	n.Status.Recipients = 2
	n.Status.Deliveries = notifyv1.DeliveryCounts{Total: 3, Succeeded: 1, Failed: 1, Pending: 1}
	mk := func(ch notifyv1.Channel, who string, s notifyv1.ChannelDeliveryStatus) notifyv1.ChannelDelivery {
		d := notifyv1.ChannelDelivery{}
		d.Spec.Channel, d.Spec.Recipient.Name, d.Status = ch, who, s
		return d
	}
	ds := []notifyv1.ChannelDelivery{
		mk(notifyv1.ChannelWebhook, "bob", notifyv1.ChannelDeliveryStatus{Phase: notifyv1.DeliveryPending, Reason: "RetryScheduled", Attempts: 2,
			NextAttemptTime: &metav1.MicroTime{Time: now.Add(3 * time.Second)}, LastError: "HTTP 502\nBad Gateway", Provider: "hook"}),
		mk(notifyv1.ChannelEmail, "alice", notifyv1.ChannelDeliveryStatus{Phase: notifyv1.DeliverySucceeded, Reason: "Delivered", Attempts: 1}),
		mk(notifyv1.ChannelWebhook, "alice", notifyv1.ChannelDeliveryStatus{Phase: notifyv1.DeliveryFailed, Reason: "AttemptsExhausted", Attempts: 6, AttemptsBeforeRetry: 4}),
		mk(notifyv1.ChannelInApp, "alice", notifyv1.ChannelDeliveryStatus{}),
	}
	ds[3].Spec.DeliveredOnCreate = true
	var b bytes.Buffer
	writeTree(&b, n, ds, now)
	want := []string{
		"Notification shop/disk-full: Dispatching",
		"recipients 2; deliveries 3: 1 succeeded, 1 failed",
		"├─ email (1)",
		"├─ inApp (1)",
		"│  └─ alice  Succeeded (on create)  attempts 0",
		"│  └─ alice  Succeeded (Delivered)  attempts 1",
		"└─ webhook (2)",
		"   ├─ alice  Failed (AttemptsExhausted)  attempts 6 (4 before the last retry)",
		"   └─ bob  Pending (RetryScheduled)  attempts 2  next attempt in 3s  provider hook  last error: HTTP 502 Bad Gateway",
	}
	got := b.String()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("tree lacks %q:\n%s", w, got)
		}
	}
}

func TestSendFlags(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		f       sendFlags
		wantErr string
	}{
		{"no audience", sendFlags{message: "m"}, "no audience"},
		{"no content", sendFlags{users: []string{"a"}}, "nothing to send"},
		{"template and message", sendFlags{users: []string{"a"}, template: "t", message: "m"}, "excludes"},
		{"bad param", sendFlags{users: []string{"a"}, template: "t", params: []string{"x"}}, "NAME=VALUE"},
		{"param without template", sendFlags{users: []string{"a"}, message: "m", params: []string{"x=y"}}, "needs --template"},
		{"bad action", sendFlags{users: []string{"a"}, message: "m", actions: []string{"ok"}}, "ID=LABEL"},
		{"ok", sendFlags{users: []string{"a"}, message: "m", channels: []string{"inApp"}, typ: "warning"}, ""},
		{"approval", sendFlags{roles: []string{"r"}, message: "m", channels: []string{"inApp"}, actions: []string{"approve=Approve"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.f.builder("ns", now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			if n.Namespace != "ns" || n.Name == "" {
				t.Errorf("built %s/%s", n.Namespace, n.Name)
			}
		})
	}
}

func TestCommandTree(t *testing.T) {
	cmd := NewCommand(testStreams())
	for _, path := range [][]string{{"send"}, {"status"}, {"retry"}, {"cancel"}, {"inbox"}, {"inbox", "get"}, {"inbox", "read"}, {"inbox", "archive"}, {"inbox", "ack"}, {"inbox", "answer"}} {
		c, _, err := cmd.Find(path)
		if err != nil || c.Name() != path[len(path)-1] {
			t.Errorf("no command %v: %v", path, err)
		}
	}
	cmd.SetArgs([]string{"status", "x", "-o", "wide"})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "unknown output format") {
		t.Errorf("-o wide: err %v, want unknown output format", err)
	}
}

func TestCompletion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "retry", "x", "--channel", ""}, []string{"webhook", "email", "inApp"}},
		{[]string{"__complete", "retry", "x", "--reason", ""}, []string{"AttemptsExhausted", "Expired"}},
		{[]string{"__complete", "status", "x", "-o", ""}, []string{"yaml", "json"}},
		{[]string{"__complete", "send", "--type", ""}, []string{"approval", "critical"}},
		{[]string{"__complete", ""}, []string{"send", "status", "retry", "cancel", "inbox"}},
	} {
		var out bytes.Buffer
		cmd := NewCommand(testStreams())
		cmd.SetOut(&out)
		cmd.SetArgs(tc.args)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w+"\n") && !strings.Contains(out.String(), w+"\t") {
				t.Errorf("%v: completion lacks %q:\n%s", tc.args, w, out.String())
			}
		}
	}
}
