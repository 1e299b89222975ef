package v1alpha1_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	heraldenvtest "github.com/herald-dev/herald/internal/dev/testutil/envtest"
)

// manifest builds a namespaced object of kind with the given spec YAML.
func manifest(kind, name, spec string) *unstructured.Unstructured {
	doc := fmt.Sprintf("apiVersion: notify.herald.dev/v1alpha1\nkind: %s\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n%s",
		kind, name, namespace, indent(spec, "  "))
	obj := &unstructured.Unstructured{}
	Expect(yaml.Unmarshal([]byte(doc), &obj.Object)).To(Succeed(), doc)
	return obj
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// A valid Notification spec body that the invalid cases alter.
const notificationBody = `title: Disk almost full
message: /var is 95% full on node-1.
audience:
  users: [alice]
channels: [inApp]
`

func create(obj client.Object) error {
	return k8sClient.Create(ctx, obj)
}

var _ = Describe("samples", func() {
	It("accepts every manifest in config/samples", func() {
		root, err := heraldenvtest.RepoRoot()
		Expect(err).NotTo(HaveOccurred())
		files, err := filepath.Glob(filepath.Join(root, "config", "samples", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		kinds := map[string]bool{}
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			data, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			for _, doc := range strings.Split(string(data), "\n---\n") {
				obj := &unstructured.Unstructured{}
				Expect(yaml.Unmarshal([]byte(doc), &obj.Object)).To(Succeed(), f)
				obj.SetNamespace(namespace)
				Expect(create(obj)).To(Succeed(), "sample %s (%s) was rejected", filepath.Base(f), obj.GetName())
				kinds[obj.GetKind()] = true
			}
		}
		Expect(kinds).To(HaveKey("Notification"))
		Expect(kinds).To(HaveKey("ChannelDelivery"))
		Expect(kinds).To(HaveKey("Recipient"))
		Expect(kinds).To(HaveKey("NotificationProvider"))
		Expect(kinds).To(HaveKey("NotificationTemplate"))
		Expect(kinds).To(HaveKey("NotificationSchedule"))
		Expect(kinds).To(HaveKey("EventRule"))
	})
})

var _ = Describe("admission", func() {
	var n int
	uniqueName := func() string {
		n++
		return fmt.Sprintf("invalid-%d", n)
	}

	DescribeTable("rejects invalid manifests with a clear message",
		func(kind, spec, want string) {
			obj := manifest(kind, uniqueName(), spec)
			err := create(obj)
			Expect(err).To(HaveOccurred(), "manifest was accepted:\n%s", spec)
			Expect(err.Error()).To(ContainSubstring(want))
			GinkgoWriter.Printf("%s rejected: %v\n", kind, err)
		},
		// Notification: enums and required fields.
		Entry("unknown channel", "Notification", strings.Replace(notificationBody, "[inApp]", "[inApp, sms]", 1),
			`Unsupported value: "sms"`),
		Entry("unknown type", "Notification", notificationBody+"type: urgent\n",
			`Unsupported value: "urgent"`),
		Entry("no channels", "Notification", strings.Replace(notificationBody, "channels: [inApp]\n", "", 1),
			`spec.channels: Required value`),
		Entry("empty channels", "Notification", strings.Replace(notificationBody, "[inApp]", "[]", 1),
			`spec.channels: Invalid value: 0: spec.channels in body should have at least 1 items`),
		Entry("duplicate channel", "Notification", strings.Replace(notificationBody, "[inApp]", "[email, email]", 1),
			`Duplicate value: "email"`),
		Entry("no audience", "Notification", "title: t\nmessage: m\nchannels: [inApp]\n",
			`spec.audience: Required value`),
		Entry("empty audience", "Notification", "title: t\nmessage: m\naudience: {}\nchannels: [inApp]\n",
			`audience needs at least one of users, roles or selector`),
		Entry("templateRef and message", "Notification", notificationBody+"templateRef:\n  name: disk\n",
			`set either templateRef or title/message, not both and not neither`),
		Entry("neither templateRef nor message", "Notification", "audience:\n  users: [alice]\nchannels: [inApp]\n",
			`set either templateRef or title/message, not both and not neither`),
		Entry("title without message", "Notification", "title: t\naudience:\n  users: [alice]\nchannels: [inApp]\n",
			`message is required when no templateRef is set`),
		Entry("approval without actions", "Notification", notificationBody+"type: approval\n",
			`an approval notification needs at least one action`),
		Entry("actions on an informational notification", "Notification", notificationBody+"actions:\n- id: ok\n  label: OK\n",
			`actions are only allowed on approval notifications`),
		Entry("quorum on an informational notification", "Notification", notificationBody+"quorum: 2\n",
			`quorum is only allowed on approval notifications`),
		Entry("action id with capitals", "Notification", notificationBody+"type: approval\nactions:\n- id: Approve!\n  label: Approve\n",
			`spec.actions[0].id in body should match`),
		Entry("category with spaces", "Notification", notificationBody+"category: Security Alerts\n",
			`spec.category in body should match`),
		// Acknowledgement, escalation and reminders.
		Entry("unknown acknowledge policy", "Notification", notificationBody+"acknowledge: Most\n",
			`Unsupported value: "Most"`),
		Entry("six escalation steps", "Notification", notificationBody+"escalation:\n"+strings.Repeat("- after: 10m\n", 6),
			`spec.escalation: Too many: 6: must have at most 5 items`),
		Entry("escalation steps out of order", "Notification", notificationBody+"escalation:\n- after: 30m\n- after: 10m\n",
			`each step's after must be later than the previous step's`),
		Entry("escalation step with a malformed after", "Notification", notificationBody+"escalation:\n- after: soon\n",
			`spec.escalation[0].after in body should match`),
		Entry("escalation without the inbox", "Notification", strings.Replace(notificationBody, "[inApp]", "[email]", 1)+"escalation:\n- after: 10m\n",
			`escalation and remind stop when the notification is acknowledged, which happens in the inbox: add the inApp channel`),
		Entry("escalation step with an empty audience", "Notification", notificationBody+"escalation:\n- after: 10m\n  audience: {}\n",
			`audience needs at least one of users, roles or selector`),
		Entry("reminders too often", "Notification", notificationBody+"remind:\n  every: 30s\n  max: 3\n",
			`remind.every must be at least 1m`),
		Entry("too many reminders", "Notification", notificationBody+"remind:\n  every: 1h\n  max: 11\n",
			`spec.remind.max in body should be less than or equal to 10`),
		// Retry policy.
		Entry("maxAttempts 0", "Notification", notificationBody+"retry:\n  maxAttempts: 0\n",
			`spec.retry.maxAttempts in body should be greater than or equal to 1`),
		Entry("maxAttempts 51", "Notification", notificationBody+"retry:\n  maxAttempts: 51\n",
			`spec.retry.maxAttempts in body should be less than or equal to 50`),
		Entry("initialDelay longer than maxDelay", "Notification", notificationBody+"retry:\n  initialDelay: 10m\n  maxDelay: 1m\n",
			`initialDelay must not be longer than maxDelay`),
		Entry("unknown backoff strategy", "Notification", notificationBody+"retry:\n  strategy: Random\n",
			`Unsupported value: "Random"`),
		Entry("malformed duration", "Notification", notificationBody+"retry:\n  initialDelay: soon\n",
			`spec.retry.initialDelay in body should match`),
		Entry("zero timeout", "Notification", notificationBody+"timeout: 0s\n",
			`timeout must be between 0s (exclusive) and 10m`),
		Entry("expiry before deliverAfter", "Notification", notificationBody+"deliverAfter: \"2030-01-02T00:00:00Z\"\nexpiresAt: \"2030-01-01T00:00:00Z\"\n",
			`expiresAt must be later than deliverAfter`),
		// Recipient.
		Entry("phone not in E.164", "Recipient", "phone: \"0151 12345678\"\n",
			`phone must be in E.164 form`),
		Entry("email without a domain", "Recipient", "email: alice\n",
			`email must be an address like name@example.com`),
		Entry("quiet hours at 25:00", "Recipient", "preferences:\n  quietHours:\n    start: \"25:00\"\n    end: \"07:00\"\n",
			`spec.preferences.quietHours.start in body should match`),
		Entry("quiet hours of zero length", "Recipient", "preferences:\n  quietHours:\n    start: \"07:00\"\n    end: \"07:00\"\n",
			`quietHours start and end must differ`),
		Entry("ftp webhook URL", "Recipient", "webhookURL: ftp://example.com/hook\n",
			`webhookURL must be an absolute http or https URL`),
		Entry("unknown opt-out channel", "Recipient", "preferences:\n  optOut: [pager]\n",
			`Unsupported value: "pager"`),
		// NotificationProvider.
		Entry("inApp provider", "NotificationProvider", "channel: inApp\n",
			`inApp needs no provider`),
		Entry("email provider without smtp", "NotificationProvider", "channel: email\nwebhook:\n  url: https://example.com\n",
			`an email provider needs smtp settings, and only email providers may have them`),
		Entry("email provider with webhook settings too", "NotificationProvider",
			"channel: email\nsmtp:\n  host: smtp.example.com\n  port: 587\n  from: a@example.com\nwebhook:\n  url: https://example.com\n",
			`a webhook provider needs webhook settings, and only webhook providers may have them`),
		Entry("unknown SMTP TLS mode", "NotificationProvider", "channel: email\nsmtp:\n  host: smtp.example.com\n  port: 587\n  tls: SSL\n  from: a@example.com\n",
			`Unsupported value: "SSL"`),
		Entry("SMTP port out of range", "NotificationProvider", "channel: email\nsmtp:\n  host: smtp.example.com\n  port: 70000\n  from: a@example.com\n",
			`spec.smtp.port in body should be less than or equal to 65535`),
		Entry("cloud API without phoneNumberID", "NotificationProvider", "channel: whatsapp\nwhatsapp:\n  api: cloud\n",
			`the cloud api needs phoneNumberID`),
		Entry("twilio without sender", "NotificationProvider", "channel: whatsapp\nwhatsapp:\n  api: twilio\n  accountSID: AC123\n",
			`the twilio api needs accountSID and from`),
		Entry("unknown WhatsApp API", "NotificationProvider", "channel: whatsapp\nwhatsapp:\n  api: telegram\n",
			`Unsupported value: "telegram"`),
		Entry("cloud receipts without the app secret", "NotificationProvider",
			"channel: whatsapp\nwhatsapp:\n  api: cloud\n  phoneNumberID: \"1\"\n  receipts:\n    verifyTokenRef: {name: s, key: k}\n",
			`receipts for the cloud api need appSecretRef and verifyTokenRef`),
		Entry("twilio receipts with Meta's app secret", "NotificationProvider",
			"channel: whatsapp\nwhatsapp:\n  api: twilio\n  accountSID: AC1\n  from: \"+14155238886\"\n  credentialsSecretRef: {name: t}\n  receipts:\n    appSecretRef: {name: s, key: k}\n",
			`receipts for the twilio api are verified with the auth token of credentialsSecretRef`),
		Entry("waha receipts", "NotificationProvider",
			"channel: whatsapp\nwhatsapp:\n  api: waha\n  baseURL: http://waha:3000\n  receipts: {}\n",
			`receipts are not available for the waha api`),
		Entry("rate limit of zero", "NotificationProvider", "channel: webhook\nwebhook:\n  url: https://example.com\nrateLimit:\n  requests: 0\n",
			`spec.rateLimit.requests in body should be greater than or equal to 1`),
		Entry("webhook header both in headers and headersFrom", "NotificationProvider",
			"channel: webhook\nwebhook:\n  url: https://example.com\n  headers:\n    authorization: x\n  headersFrom:\n  - name: Authorization\n    secretKeyRef: {name: s, key: k}\n",
			`a header may be set in headers or in headersFrom, not both`),
		Entry("webhook headersFrom without url", "NotificationProvider",
			"channel: webhook\nwebhook:\n  headersFrom:\n  - name: Authorization\n    secretKeyRef: {name: s, key: k}\n",
			`headersFrom needs url`),
		Entry("webhook headersFrom with an invalid header name", "NotificationProvider",
			"channel: webhook\nwebhook:\n  url: https://example.com\n  headersFrom:\n  - name: X Bad\n    secretKeyRef: {name: s, key: k}\n",
			`spec.webhook.headersFrom[0].name in body should match`),
		Entry("webhook headersFrom names twice, in other case", "NotificationProvider",
			"channel: webhook\nwebhook:\n  url: https://example.com\n  headersFrom:\n  - name: X-Token\n    secretKeyRef: {name: s, key: k}\n  - name: x-token\n    secretKeyRef: {name: s, key: k2}\n",
			`header names in headersFrom must be unique (case-insensitive)`),
		Entry("webhook headersFrom without secretKeyRef key", "NotificationProvider",
			"channel: webhook\nwebhook:\n  url: https://example.com\n  headersFrom:\n  - name: X-Token\n    secretKeyRef: {name: s}\n",
			`spec.webhook.headersFrom[0].secretKeyRef.key: Required value`),
		Entry("webhook headersFrom with 17 headers", "NotificationProvider",
			"channel: webhook\nwebhook:\n  url: https://example.com\n  headersFrom:\n"+manyHeaders(17),
			`spec.webhook.headersFrom: Too many: 17: must have at most 16 items`),
		// Chat channels.
		Entry("slack recipient with both user and channel", "Recipient", "slack:\n  userID: U024BE7LH\n  channelID: C024BE91L\n",
			`slack needs exactly one of userID (e.g. U024BE7LH) or channelID (e.g. C024BE91L)`),
		Entry("slack recipient with neither", "Recipient", "slack: {}\n",
			`slack needs exactly one of userID`),
		Entry("slack channel by #name", "Recipient", "slack:\n  channelID: \"#ops\"\n",
			`slack.channelID must be a conversation ID such as C024BE91L (not a #name)`),
		Entry("slack user by handle", "Recipient", "slack:\n  userID: \"@alice\"\n",
			`slack.userID must be a member ID such as U024BE7LH`),
		Entry("teams recipient with a URL instead of a Secret", "Recipient", "teams:\n  webhookURL: https://example.com\n",
			`spec.teams.webhookURLSecretRef: Required value`),
		Entry("telegram chat by name", "Recipient", "telegram:\n  chatID: alice\n",
			`telegram.chatID must be a numeric chat ID`),
		Entry("slack provider without a token", "NotificationProvider", "channel: slack\nslack: {}\n",
			`spec.slack.botTokenSecretRef: Required value`),
		Entry("slack provider without slack settings", "NotificationProvider", "channel: slack\n",
			`a slack provider needs slack settings`),
		Entry("telegram settings on a teams provider", "NotificationProvider", "channel: teams\ntelegram:\n  botTokenSecretRef: {name: s, key: token}\n",
			`a teams provider needs teams settings`),
		Entry("slack default channel by #name", "NotificationProvider", "channel: slack\nslack:\n  botTokenSecretRef: {name: s, key: token}\n  defaultChannel: \"#ops\"\n",
			`defaultChannel must be a conversation ID`),
		Entry("telegram baseURL not a URL", "NotificationProvider", "channel: telegram\ntelegram:\n  botTokenSecretRef: {name: s, key: token}\n  baseURL: api.telegram.org\n",
			`baseURL must be an absolute http or https URL`),
		Entry("slack blocks not an array", "NotificationTemplate", "message: hi\nslack:\n  blocks: '{\"type\": \"section\"}'\n",
			`slack.blocks must be a JSON array of Block Kit blocks`),
		Entry("teams card not an object", "NotificationTemplate", "message: hi\nteams:\n  card: '[]'\n",
			`teams.card must be one Adaptive Card as a JSON object`),
		Entry("unknown telegram parse mode", "NotificationTemplate", "message: hi\ntelegram:\n  parseMode: Textile\n",
			`Unsupported value: "Textile"`),
		Entry("approval to slack without inApp", "Notification", strings.Replace(notificationBody, "[inApp]", "[slack]", 1)+"type: approval\nactions:\n- id: ok\n  label: OK\n",
			`an approval sent to slack or teams also needs the inApp channel`),
		Entry("eight channels", "Notification", strings.Replace(notificationBody, "[inApp]", "[inApp, email, whatsapp, webhook, slack, teams, telegram, sms]", 1),
			`Unsupported value: "sms"`),
		// NotificationSchedule.
		Entry("schedule in words", "NotificationSchedule", "schedule: every monday\nnotification:\n  spec:\n"+indent(notificationBody, "    "),
			`schedule must be five cron fields`),
		Entry("negative starting deadline", "NotificationSchedule", "schedule: \"@daily\"\nstartingDeadlineSeconds: -5\nnotification:\n  spec:\n"+indent(notificationBody, "    "),
			`spec.startingDeadlineSeconds in body should be greater than or equal to 0`),
		Entry("schedule with an invalid notification", "NotificationSchedule", "schedule: \"@daily\"\nnotification:\n  spec:\n"+indent(strings.Replace(notificationBody, "[inApp]", "[fax]", 1), "    "),
			`Unsupported value: "fax"`),
		// NotificationTemplate.
		Entry("required param with default", "NotificationTemplate", "params:\n- name: app\n  required: true\n  default: web\nmessage: hi {{ .app }}\n",
			`a required param cannot have a default`),
		Entry("param name with a dash", "NotificationTemplate", "params:\n- name: my-app\nmessage: hi\n",
			`spec.params[0].name in body should match`),
		Entry("template without message", "NotificationTemplate", "title: hi\n",
			`spec.message: Required value`),
		// EventRule.
		Entry("unknown grouping key", "EventRule", "match: {}\ngrouping:\n  by: [pod]\nnotification:\n  spec:\n"+indent(notificationBody, "    "),
			`spec.grouping.by[0] in body should match`),
		Entry("grouping wait not shorter than interval", "EventRule", "match: {}\ngrouping:\n  wait: 10m\n  interval: 5m\nnotification:\n  spec:\n"+indent(notificationBody, "    "),
			`grouping.wait must be shorter than grouping.interval`),
		Entry("grouping interval over a day", "EventRule", "match: {}\ngrouping:\n  interval: 25h\nnotification:\n  spec:\n"+indent(notificationBody, "    "),
			`grouping.interval must be between 1s and 24h`),
		Entry("unknown event type", "EventRule", "match:\n  types: [Error]\nnotification:\n  spec:\n"+indent(notificationBody, "    "),
			`Unsupported value: "Error"`),
		Entry("no budget", "EventRule", "match: {}\nmaxNotificationsPerMinute: 0\nnotification:\n  spec:\n"+indent(notificationBody, "    "),
			`spec.maxNotificationsPerMinute in body should be greater than or equal to 1`),
		Entry("negative budget", "EventRule", "match: {}\nmaxNotificationsPerMinute: -5\nnotification:\n  spec:\n"+indent(notificationBody, "    "),
			`spec.maxNotificationsPerMinute in body should be greater than or equal to 1`),
		Entry("budget over the maximum", "EventRule", "match: {}\nmaxNotificationsPerMinute: 601\nnotification:\n  spec:\n"+indent(notificationBody, "    "),
			`spec.maxNotificationsPerMinute in body should be less than or equal to 600`),
	)

	It("keeps a Notification's spec immutable", func() {
		obj := manifest("Notification", "immutable", notificationBody)
		Expect(create(obj)).To(Succeed())
		Expect(unstructured.SetNestedField(obj.Object, "Changed title", "spec", "title")).To(Succeed())
		err := k8sClient.Update(ctx, obj)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("spec is immutable: create a new Notification instead"))
	})

	It("keeps a ChannelDelivery's spec immutable, not its status", func() {
		obj := manifest("ChannelDelivery", "immutable", "notification: note1\nchannel: inApp\nrecipient:\n  name: alice\ncontent:\n  title: hi\n  message: hi\n")
		Expect(create(obj)).To(Succeed())
		// Status writes are not matched by the policy.
		Expect(unstructured.SetNestedField(obj.Object, "Succeeded", "status", "phase")).To(Succeed())
		Expect(k8sClient.Status().Update(ctx, obj)).To(Succeed())
		Expect(unstructured.SetNestedField(obj.Object, "bob", "spec", "recipient", "name")).To(Succeed())
		err := k8sClient.Update(ctx, obj)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("spec is immutable"))
		// Metadata may still change: labels, annotations, finalizers.
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		obj.SetAnnotations(map[string]string{"note": "x"})
		Expect(k8sClient.Update(ctx, obj)).To(Succeed())
	})

	It("fills defaults a person would expect", func() {
		obj := manifest("Notification", "defaults", notificationBody)
		Expect(create(obj)).To(Succeed())
		typ, _, _ := unstructured.NestedString(obj.Object, "spec", "type")
		Expect(typ).To(Equal("informational"))
	})
})

// manyHeaders lists n headersFrom entries of distinct names.
func manyHeaders(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "  - name: X-H%d\n    secretKeyRef: {name: s, key: k}\n", i)
	}
	return b.String()
}
