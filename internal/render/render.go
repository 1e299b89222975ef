// Package render produces a delivery's content from a Notification, either
// directly from its title and message or from a NotificationTemplate with
// params. Rendering happens once, at fan-out; deliveries carry the result.
package render

import (
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"sort"
	"strings"
	texttemplate "text/template"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// Content renders the notification. tmpl must be the template named by
// spec.templateRef, or nil when the notification has none.
func Content(spec *notifyv1.NotificationSpec, tmpl *notifyv1.NotificationTemplateContent) (notifyv1.RenderedContent, error) {
	out := notifyv1.RenderedContent{
		Type:     spec.Type,
		Category: spec.Category,
		Actions:  spec.Actions,
	}
	if tmpl == nil {
		out.Title = spec.Title
		out.Message = spec.Message
		return out, nil
	}
	params, err := Params(tmpl.Params, spec.Params)
	if err != nil {
		return out, err
	}
	r := newRenderer(params)
	out.Title = r.text("title", tmpl.Title)
	out.Message = r.text("message", tmpl.Message)
	if e := tmpl.Email; e != nil {
		out.Email = &notifyv1.EmailContent{
			Subject: r.text("email.subject", e.Subject),
			Text:    r.text("email.text", e.Text),
			HTML:    r.html("email.html", e.HTML),
		}
	}
	if w := tmpl.WhatsApp; w != nil {
		out.WhatsApp = &notifyv1.WhatsAppContent{Text: r.text("whatsapp.text", w.Text)}
		if t := w.Template; t != nil {
			wt := *t
			wt.Params = make([]string, len(t.Params))
			for i, p := range t.Params {
				wt.Params[i] = r.text(fmt.Sprintf("whatsapp.template.params[%d]", i), p)
			}
			out.WhatsApp.Template = &wt
		}
	}
	if c := tmpl.Slack; c != nil {
		out.Slack = &notifyv1.SlackContent{Text: r.text("slack.text", c.Text), Blocks: r.text("slack.blocks", c.Blocks)}
	}
	if c := tmpl.Teams; c != nil {
		out.Teams = &notifyv1.TeamsContent{Card: r.text("teams.card", c.Card)}
	}
	if c := tmpl.Telegram; c != nil {
		out.Telegram = &notifyv1.TelegramContent{Text: r.text("telegram.text", c.Text), ParseMode: c.ParseMode}
	}
	out.WebhookPayload = r.text("webhookPayload", tmpl.WebhookPayload)
	return out, r.err
}

// Params merges given values with the declared defaults. It fails when a
// required param is missing or an undeclared one is given, naming them.
func Params(declared []notifyv1.TemplateParam, given map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(declared))
	known := make(map[string]bool, len(declared))
	var missing, unknown []string
	for _, p := range declared {
		known[p.Name] = true
		v, ok := given[p.Name]
		switch {
		case ok:
			out[p.Name] = v
		case p.Required:
			missing = append(missing, p.Name)
		default:
			out[p.Name] = p.Default
		}
	}
	for k := range given {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	// Both problems are reported at once so that one look at the
	// Notification's condition is enough to fix it.
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, "missing required params: "+strings.Join(missing, ", "))
	}
	if len(unknown) > 0 {
		problems = append(problems, "params not declared by the template: "+strings.Join(unknown, ", "))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return out, nil
}

// Check parses every template of a NotificationTemplate and reports the
// first error with the field and line it is in, e.g.
// `message: template: message:3: function "foo" not defined`.
//
// Parsing alone misses two kinds of mistakes that would otherwise only
// show when a Notification is rendered: a reference to a param the
// template does not declare, and HTML that leaves an escaping context open
// (html/template reports those when it executes). Check therefore also
// executes every template once, with each param set to its default or to
// a placeholder.
func Check(tmpl *notifyv1.NotificationTemplateContent) error {
	sample := map[string]string{}
	for _, p := range tmpl.Params {
		sample[p.Name] = p.Default
		if p.Default == "" {
			sample[p.Name] = "sample"
		}
	}
	r := newRenderer(sample)
	fields := map[string]string{"title": tmpl.Title, "message": tmpl.Message, "webhookPayload": tmpl.WebhookPayload}
	if e := tmpl.Email; e != nil {
		fields["email.subject"], fields["email.text"] = e.Subject, e.Text
		r.html("email.html", e.HTML)
	}
	if w := tmpl.WhatsApp; w != nil {
		fields["whatsapp.text"] = w.Text
		if t := w.Template; t != nil {
			for i, p := range t.Params {
				fields[fmt.Sprintf("whatsapp.template.params[%d]", i)] = p
			}
		}
	}
	if c := tmpl.Slack; c != nil {
		fields["slack.text"], fields["slack.blocks"] = c.Text, c.Blocks
	}
	if c := tmpl.Teams; c != nil {
		fields["teams.card"] = c.Card
	}
	if c := tmpl.Telegram; c != nil {
		fields["telegram.text"] = c.Text
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	rendered := make(map[string]string, len(keys))
	for _, k := range keys {
		rendered[k] = r.text(k, fields[k])
	}
	if r.err != nil {
		return r.err
	}
	// Slack blocks and a Teams card are JSON documents: a template that
	// renders to anything else would fail every delivery, so the
	// template is not Ready.
	if src := strings.TrimSpace(rendered["slack.blocks"]); src != "" {
		var blocks []map[string]any
		if err := json.Unmarshal([]byte(src), &blocks); err != nil {
			return fmt.Errorf("slack.blocks must render to a JSON array of Block Kit blocks: %v", err)
		}
		if len(blocks) > 50 {
			return fmt.Errorf("slack.blocks renders to %d blocks; Slack accepts at most 50", len(blocks))
		}
	}
	if src := strings.TrimSpace(rendered["teams.card"]); src != "" {
		var card map[string]any
		if err := json.Unmarshal([]byte(src), &card); err != nil {
			return fmt.Errorf("teams.card must render to an Adaptive Card JSON object: %v", err)
		}
		if card["type"] != "AdaptiveCard" {
			return errors.New(`teams.card must have "type": "AdaptiveCard"`)
		}
	}
	return nil
}

// Text renders one text/template with params, failing on a reference to a
// key that params lacks. field names the template in errors. Callers that
// fill in content of their own (event rules) use it so that every template
// in Herald follows the same rules and functions.
func Text(field, src string, params map[string]string) (string, error) {
	r := newRenderer(params)
	out := r.text(field, src)
	return out, r.err
}

// renderer keeps the first error so that callers can render every field and
// check once. Its budget bounds the render's output and time (bounds.go).
type renderer struct {
	params map[string]string
	err    error
	b      *budget
	funcs  map[string]any
}

func newRenderer(params map[string]string) *renderer {
	b := newBudget()
	return &renderer{params: params, b: b, funcs: b.funcs()}
}

func (r *renderer) parseText(name, src string) *texttemplate.Template {
	if r.err != nil || src == "" {
		return nil
	}
	t, err := texttemplate.New(name).Funcs(r.funcs).Option("missingkey=error").Parse(src)
	if err == nil {
		err = checkBounded(name, src)
	}
	if err != nil {
		r.err = fmt.Errorf("%s: %w", name, err)
		return nil
	}
	return t
}

func (r *renderer) parseHTML(name, src string) *htmltemplate.Template {
	if r.err != nil || src == "" {
		return nil
	}
	t, err := htmltemplate.New(name).Funcs(r.funcs).Option("missingkey=error").Parse(src)
	if err == nil {
		err = checkBounded(name, src)
	}
	if err != nil {
		r.err = fmt.Errorf("%s: %w", name, err)
		return nil
	}
	return t
}

// executor is what text/template and html/template have in common.
type executor interface {
	Execute(w io.Writer, data any) error
}

// execute runs one field's template into a writer limited to the field's
// output limit, the render's total and its time budget.
func (r *renderer) execute(name string, t executor) string {
	r.b.field = FieldLimit(name)
	w := &limitedWriter{b: r.b}
	if err := t.Execute(w, r.params); err != nil {
		r.err = fmt.Errorf("%s: %w", name, err)
		return ""
	}
	return w.buf.String()
}

func (r *renderer) text(name, src string) string {
	t := r.parseText(name, src)
	if t == nil {
		return ""
	}
	return r.execute(name, t)
}

// html renders with html/template so that params are escaped in email HTML.
func (r *renderer) html(name, src string) string {
	t := r.parseHTML(name, src)
	if t == nil {
		return ""
	}
	return r.execute(name, t)
}
