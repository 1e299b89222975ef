package render_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/render"
)

// deployTemplate mirrors config/samples/notify_v1alpha1_notificationtemplate.yaml.
func deployTemplate() *notifyv1.NotificationTemplateContent {
	return &notifyv1.NotificationTemplateContent{
		Params: []notifyv1.TemplateParam{
			{Name: "app", Required: true},
			{Name: "version", Required: true},
			{Name: "environment", Default: "production"},
		},
		Title:   "{{ .app }} {{ .version }} is live in {{ .environment }}",
		Message: "The rollout of {{ .app }} {{ .version }} to {{ .environment }} finished.",
		Email: &notifyv1.EmailContent{
			Subject: "[deploy] {{ .app }} {{ .version }}",
			Text:    "{{ .app }} <{{ .version }}>",
			HTML:    "<p>The rollout of <b>{{ .app }}</b> {{ .version }} finished.</p>",
		},
		WhatsApp: &notifyv1.WhatsAppContent{
			Text:     "{{ .app }} is live",
			Template: &notifyv1.WhatsAppTemplate{Name: "deploy_done", Language: "en_US", Params: []string{"{{ .app }}", "{{ .environment }}"}},
		},
		WebhookPayload: `{"app": {{ json .app }}, "env": {{ json .environment }}}`,
	}
}

func TestContent(t *testing.T) {
	tests := []struct {
		name    string
		params  map[string]string
		check   func(t *testing.T, c notifyv1.RenderedContent)
		wantErr []string // substrings of the error; nil means success
	}{
		{
			name:   "required params given, default applied",
			params: map[string]string{"app": "shop", "version": "1.2.3"},
			check: func(t *testing.T, c notifyv1.RenderedContent) {
				expect(t, c.Title, "shop 1.2.3 is live in production")
				expect(t, c.Message, "The rollout of shop 1.2.3 to production finished.")
				expect(t, c.Email.Subject, "[deploy] shop 1.2.3")
				expect(t, c.WhatsApp.Text, "shop is live")
				expect(t, strings.Join(c.WhatsApp.Template.Params, ","), "shop,production")
				expect(t, c.WebhookPayload, `{"app": "shop", "env": "production"}`)
			},
		},
		{
			name:   "a given value overrides the default",
			params: map[string]string{"app": "shop", "version": "1.2.3", "environment": "staging"},
			check: func(t *testing.T, c notifyv1.RenderedContent) {
				expect(t, c.Title, "shop 1.2.3 is live in staging")
			},
		},
		{
			name:    "missing required param",
			params:  map[string]string{"app": "shop"},
			wantErr: []string{"missing required params: version"},
		},
		{
			name:    "no params at all",
			wantErr: []string{"missing required params: app, version"},
		},
		{
			name:    "unknown param",
			params:  map[string]string{"app": "shop", "version": "1", "colour": "red", "bogus": "x"},
			wantErr: []string{"params not declared by the template: bogus, colour"},
		},
		{
			name:    "missing and unknown are reported together",
			params:  map[string]string{"app": "shop", "colour": "red"},
			wantErr: []string{"missing required params: version", "not declared by the template: colour"},
		},
		{
			name:   "params are escaped in email HTML only",
			params: map[string]string{"app": `<script>alert("x")</script>`, "version": `1 & 2`},
			check: func(t *testing.T, c notifyv1.RenderedContent) {
				if strings.Contains(c.Email.HTML, "<script>") {
					t.Fatalf("email HTML not escaped: %s", c.Email.HTML)
				}
				expect(t, c.Email.HTML, `<p>The rollout of <b>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</b> 1 &amp; 2 finished.</p>`)
				// Plain text parts are not HTML and keep the value as given.
				expect(t, c.Email.Text, `<script>alert("x")</script> <1 & 2>`)
				expect(t, c.Title, `<script>alert("x")</script> 1 & 2 is live in production`)
				// json keeps the webhook payload valid JSON.
				expect(t, c.WebhookPayload, `{"app": "\u003cscript\u003ealert(\"x\")\u003c/script\u003e", "env": "production"}`)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := &notifyv1.NotificationSpec{
				Type:        notifyv1.TypeInformational,
				TemplateRef: &notifyv1.TemplateReference{Name: "deploy"},
				Params:      tc.params,
			}
			c, err := render.Content(spec, deployTemplate())
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("want error containing %q, got none", tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Fatalf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			tc.check(t, c)
		})
	}
}

func TestContentWithoutTemplateIsVerbatim(t *testing.T) {
	spec := &notifyv1.NotificationSpec{Title: "{{ .x }}", Message: "<b>hi</b>"}
	c, err := render.Content(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, c.Title, "{{ .x }}")
	expect(t, c.Message, "<b>hi</b>")
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*notifyv1.NotificationTemplateContent)
		want   []string // substrings; nil means valid
	}{
		{name: "the sample is valid", mutate: func(*notifyv1.NotificationTemplateContent) {}},
		{
			name:   "parse error in the message names field and line",
			mutate: func(c *notifyv1.NotificationTemplateContent) { c.Message = "line one\nline two {{ .app }\n" },
			want:   []string{"message:", "message:2:"},
		},
		{
			name:   "parse error in the title",
			mutate: func(c *notifyv1.NotificationTemplateContent) { c.Title = "{{ if .app }}unterminated" },
			want:   []string{"title:", "title:1:"},
		},
		{
			name:   "unknown function",
			mutate: func(c *notifyv1.NotificationTemplateContent) { c.Email.Subject = "{{ shout .app }}" },
			want:   []string{"email.subject:", `function "shout" not defined`},
		},
		{
			name: "reference to an undeclared param",
			mutate: func(c *notifyv1.NotificationTemplateContent) {
				c.Message = "ok\n{{ .app }} by {{ .author }}"
			},
			want: []string{"message:", "message:2:", `"author"`},
		},
		{
			name: "HTML left in an open escaping context",
			mutate: func(c *notifyv1.NotificationTemplateContent) {
				c.Email.HTML = "<p>fine</p>\n<a href=\"{{ .app }}"
			},
			want: []string{"email.html"},
		},
		{
			name: "WhatsApp template params are checked too",
			mutate: func(c *notifyv1.NotificationTemplateContent) {
				c.WhatsApp.Template.Params = []string{"{{ .app", "x"}
			},
			want: []string{"whatsapp.template.params[0]:"},
		},
		{
			name: "Slack blocks and a Teams card that render to JSON are valid",
			mutate: func(c *notifyv1.NotificationTemplateContent) {
				c.Slack = &notifyv1.SlackContent{Text: "*{{ .app }}*", Blocks: `[{"type":"section","text":{"type":"mrkdwn","text":{{ json .app }}}}]`}
				c.Teams = &notifyv1.TeamsContent{Card: `{"type":"AdaptiveCard","version":"1.5","body":[{"type":"TextBlock","text":{{ json .app }}}]}`}
				c.Telegram = &notifyv1.TelegramContent{Text: "<b>{{ html .app }}</b>", ParseMode: notifyv1.TelegramHTML}
			},
		},
		{
			name: "Slack blocks that do not render to a JSON array",
			mutate: func(c *notifyv1.NotificationTemplateContent) {
				c.Slack = &notifyv1.SlackContent{Blocks: `[{"type":"section","text":{{ .app }}}]`}
			},
			want: []string{"slack.blocks must render to a JSON array"},
		},
		{
			name: "more than 50 Slack blocks",
			mutate: func(c *notifyv1.NotificationTemplateContent) {
				c.Slack = &notifyv1.SlackContent{Blocks: "[" + strings.Repeat(`{"type":"divider"},`, 50) + `{"type":"divider"}]`}
			},
			want: []string{"51 blocks; Slack accepts at most 50"},
		},
		{
			name: "a Teams card that is not an Adaptive Card",
			mutate: func(c *notifyv1.NotificationTemplateContent) {
				c.Teams = &notifyv1.TeamsContent{Card: `{"type":"MessageCard"}`}
			},
			want: []string{`teams.card must have "type": "AdaptiveCard"`},
		},
		{
			name: "Telegram text is checked like every field",
			mutate: func(c *notifyv1.NotificationTemplateContent) {
				c.Telegram = &notifyv1.TelegramContent{Text: "{{ .nope }}"}
			},
			want: []string{"telegram.text:"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := deployTemplate()
			tc.mutate(tmpl)
			err := render.Check(tmpl)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not contain %q", err, w)
				}
			}
			t.Log(err)
		})
	}
}

func TestText(t *testing.T) {
	out, err := render.Text("title", "{{ .kind }}/{{ .name }}: {{ .reason }}", map[string]string{"kind": "Pod", "name": "web-0", "reason": "BackOff"})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, out, "Pod/web-0: BackOff")
	if _, err := render.Text("title", "{{ .nope }}", map[string]string{}); err == nil || !strings.Contains(err.Error(), "title:1:") {
		t.Fatalf("want a missing key error with field and line, got %v", err)
	}
}

func expect(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// TestSamples checks that every NotificationTemplate in config/samples
// renders: admission only checks their shape.
func TestSamples(t *testing.T) {
	files, err := filepath.Glob("../../config/samples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples found: %v", err)
	}
	checked := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tmpl notifyv1.NotificationTemplate
		if err := yaml.Unmarshal(data, &tmpl); err != nil || tmpl.Kind != "NotificationTemplate" {
			continue
		}
		if err := render.Check(&tmpl.Spec); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
		checked++
	}
	if checked < 2 {
		t.Fatalf("checked %d template samples, want at least 2", checked)
	}
}
