package render_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/render"
)

// TestUnboundedConstructs checks that every construct that can loop
// without bound is rejected before it runs, by Text and by Check, with the
// field, the position and the construct in the message; and that what is
// left of range still works.
func TestUnboundedConstructs(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings of the error; nil means it renders
		out  string   // the output when it renders
	}{
		{name: "range over an integer", src: "{{range 1000000000}}{{end}}",
			want: []string{"title:1:8:", "{{range 1000000000}}", "only iterate over the params"}},
		{name: "nested ranges over integers (the issue's example)", src: "{{range 1000000000}}{{range 1000000000}}{{end}}{{end}}",
			want: []string{"title:1:8:", "{{range 1000000000}}"}},
		{name: "range over a character constant", src: "{{range 'x'}}{{end}}", want: []string{"{{range 'x'}}"}},
		{name: "range over a variable", src: "{{$n := 1000000000}}{{range $n}}{{end}}", want: []string{"title:1:", "{{range $n}}"}},
		{name: "range over a function's result", src: "{{range len .app}}{{end}}", want: []string{"{{range len .app}}"}},
		{name: "range over a parenthesized pipeline", src: "{{range (1000000000)}}{{end}}", want: []string{"{{range (1000000000)}}"}},
		{name: "range over dot rebound by with", src: "{{with 1000000000}}{{range .}}{{end}}{{end}}", want: []string{"title:1:", "{{range .}}"}},
		{name: "range inside a range", src: "{{range .}}{{range $}}{{end}}{{end}}",
			want: []string{"{{range $}}", "a range inside a range"}},
		{name: "range inside with inside range", src: "{{range .}}{{with .}}{{range .}}{{end}}{{end}}{{end}}", want: []string{"a range inside a range"}},
		{name: "declaring $", src: "{{$ := 1000000000}}{{range $}}{{end}}", want: []string{"{{$ := 1000000000}}", "$ always holds the params"}},
		{name: "assigning $", src: "{{$ = 1000000000}}{{range $}}{{end}}", want: []string{"$ always holds the params"}},
		{name: "declaring $ in a parenthesized pipeline", src: "{{print ($ := 1000000000)}}{{range $}}{{end}}", want: []string{"$ always holds the params"}},
		{name: "recursive template call", src: `{{define "loop"}}{{template "loop" .}}{{end}}{{template "loop" .}}`,
			want: []string{`{{template "loop"}}`, "template calls and blocks are not supported"}},
		{name: "template call", src: `{{define "t"}}[{{.}}]{{end}}{{template "t" .app}}`, want: []string{`{{template "t"}}`}},
		{name: "block", src: `{{block "b" .}}{{.app}}{{end}}`, want: []string{"title:1:8:", `{{block "b"}}`}},
		{name: "define alone", src: `{{define "t"}}x{{end}}hello`, want: []string{`{{define "t"}}`, "definitions and calls are not supported"}},
		{name: "define replacing the field's own template", src: `{{define "title"}}x{{end}}`, want: []string{`{{define "title"}}`}},

		{name: "range over the params", src: "{{range $k, $v := .}}{{$k}}={{$v}};{{end}}", out: "app=shop;env=prod;"},
		{name: "range over $ with else", src: "{{range $}}{{.}}{{else}}none{{end}}", out: "shopprod"},
		{name: "ranges one after another", src: "{{range .}}a{{end}}{{range .}}b{{end}}", out: "aabb"},
		{name: "range in a range's else", src: "{{range .app}}{{else}}{{range .}}x{{end}}{{end}}",
			want: []string{"range can't iterate over shop"}},
		{name: "range over one param runs (and fails: a string is not iterable)", src: "{{range .app}}{{end}}",
			want: []string{"range can't iterate over shop"}},
		{name: "range over dot of with of params", src: "{{with $}}{{range .}}{{.}}{{end}}{{end}}", out: "shopprod"},
		{name: "with, if and variables are fine", src: `{{$a := .app}}{{with .env}}{{if eq . "prod"}}{{$a}}!{{end}}{{end}}`, out: "shop!"},
	}
	params := map[string]string{"app": "shop", "env": "prod"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			out, err := render.Text("title", tc.src, params)
			if took := time.Since(start); took > render.TimeBudget {
				t.Fatalf("took %s", took)
			}
			checkErr := render.Check(&notifyv1.NotificationTemplateContent{
				Params:  []notifyv1.TemplateParam{{Name: "app", Default: "shop"}, {Name: "env", Default: "prod"}},
				Title:   tc.src,
				Message: "m",
			})
			if tc.want == nil {
				if err != nil || checkErr != nil {
					t.Fatalf("Text = %q, %v; Check = %v; want it to render", out, err, checkErr)
				}
				expect(t, out, tc.out)
				return
			}
			if err == nil || checkErr == nil {
				t.Fatalf("Text = %q, %v; Check = %v; want errors containing %q", out, err, checkErr, tc.want)
			}
			if err.Error() != checkErr.Error() {
				t.Fatalf("Text and Check disagree:\n%v\n%v", err, checkErr)
			}
			if !strings.HasPrefix(err.Error(), "title: ") {
				t.Fatalf("error %q does not name the field", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(tc.want[0], "range can't") {
				return // an execution error, not a rejected construct
			}
			if !errors.Is(err, render.ErrUnbounded) {
				t.Fatalf("error %q is not ErrUnbounded", err)
			}
			t.Log(err)
		})
	}
}

// TestUnboundedInEveryField checks that the constructs are rejected in the
// HTML body and in the fields Content renders, naming the field.
func TestUnboundedInEveryField(t *testing.T) {
	const hostile = "{{range 1000000000}}{{range 1000000000}}{{end}}{{end}}"
	for field, mutate := range map[string]func(*notifyv1.NotificationTemplateContent){
		"message":                     func(c *notifyv1.NotificationTemplateContent) { c.Message = hostile },
		"email.html":                  func(c *notifyv1.NotificationTemplateContent) { c.Email.HTML = hostile },
		"email.subject":               func(c *notifyv1.NotificationTemplateContent) { c.Email.Subject = hostile },
		"whatsapp.template.params[1]": func(c *notifyv1.NotificationTemplateContent) { c.WhatsApp.Template.Params[1] = hostile },
		"webhookPayload":              func(c *notifyv1.NotificationTemplateContent) { c.WebhookPayload = hostile },
	} {
		t.Run(field, func(t *testing.T) {
			tmpl := deployTemplate()
			mutate(tmpl)
			spec := &notifyv1.NotificationSpec{Params: map[string]string{"app": "shop", "version": "1"}}
			for _, err := range []error{render.Check(tmpl), func() error { _, err := render.Content(spec, tmpl); return err }()} {
				if !errors.Is(err, render.ErrUnbounded) || !strings.HasPrefix(err.Error(), field+": ") {
					t.Fatalf("error %v, want ErrUnbounded naming %s", err, field)
				}
			}
		})
	}
}

// TestOutputLimits checks the output fences: per field, in all, and for
// the functions that build strings without writing them.
func TestOutputLimits(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name   string
		field  string
		src    string
		params map[string]string
		ok     bool
	}{
		{name: "title at its limit", field: "title", src: long(render.FieldLimit("title")), ok: true},
		{name: "title beyond its limit", field: "title", src: long(render.FieldLimit("title") + 1)},
		{name: "a long param in the title", field: "title", src: "{{.a}}", params: map[string]string{"a": long(5000)}},
		{name: "the same param fits the message", field: "message", src: "{{.a}}", params: map[string]string{"a": long(5000)}, ok: true},
		{name: "subject beyond 1 KiB", field: "email.subject", src: "{{.a}}{{.a}}", params: map[string]string{"a": long(600)}},
		{name: "a range that writes too much", field: "message", src: "{{range .}}{{.}}{{end}}",
			params: map[string]string{"a": long(40000), "b": long(40000)}},
		{name: "printf width beyond the field", field: "title", src: `{{printf "%5000s" ""}}`},
		{name: "printf width from an operand", field: "message", src: `{{printf "%*d" 1000000 1}}`},
		{name: "printf precision", field: "message", src: `{{printf "%.1000000f" 1.0}}`},
		{name: "printf reusing an operand", field: "title", src: `{{printf "%[1]s%[1]s%[1]s" .a}}`, params: map[string]string{"a": long(200)}},
		{name: "a modest printf", field: "title", src: `{{printf "%-10s|%5.2f|%q" .a 3.14159 .a}}`, params: map[string]string{"a": "shop"}, ok: true},
		{name: "a string doubled in memory, never written", field: "message",
			src: `{{$a := printf "%60000s" ""}}{{$a = print $a $a}}{{$a = print $a $a}}{{$a = print $a $a}}{{len $a}}`},
		{name: "js escaping grows the string", field: "title", src: "{{js .a}}", params: map[string]string{"a": long(1000)}},
		{name: "json of a long param", field: "webhookPayload", src: "{{json .a}}", params: map[string]string{"a": long(30000)}},
		{name: "json of a short param", field: "webhookPayload", src: `{"a": {{json .a}}}`, params: map[string]string{"a": `"<x>"`}, ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := render.Text(tc.field, tc.src, tc.params)
			if len(out) > render.FieldLimit(tc.field) {
				t.Fatalf("%d bytes out, beyond %d", len(out), render.FieldLimit(tc.field))
			}
			if tc.ok {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, render.ErrOutputLimit) || !strings.HasPrefix(err.Error(), tc.field+": ") {
				t.Fatalf("error %v, want an output limit error naming %s", err, tc.field)
			}
			t.Log(err)
		})
	}
}

// TestTotalOutputLimit checks that the fields of one render share a total.
func TestTotalOutputLimit(t *testing.T) {
	big := "{{.a}}{{.a}}"
	tmpl := &notifyv1.NotificationTemplateContent{
		Params:         []notifyv1.TemplateParam{{Name: "a", Required: true}},
		Message:        "{{.a}}",
		Email:          &notifyv1.EmailContent{Text: big, HTML: big},
		WebhookPayload: big,
	}
	spec := &notifyv1.NotificationSpec{Params: map[string]string{"a": strings.Repeat("y", 50<<10)}}
	// 50 KiB + 3×100 KiB: every field fits its own limit, not all of them
	// together.
	_, err := render.Content(spec, tmpl)
	if !errors.Is(err, render.ErrOutputLimit) || !strings.Contains(err.Error(), "in all") {
		t.Fatalf("error %v, want the total output limit", err)
	}
	t.Log(err)
	tmpl.WebhookPayload = ""
	if _, err := render.Content(spec, tmpl); err != nil {
		t.Fatalf("250 KiB in all: %v", err)
	}
}
