package render_test

import (
	"encoding/json"
	"errors"
	"html"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/render"
)

// isIdentifier reports whether {{ .s }} names the param s: ASCII letters,
// digits and underscores, not starting with a digit.
func isIdentifier(s string) bool {
	if s == "" || '0' <= s[0] && s[0] <= '9' {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// templateSeeds are template sources worth starting from: those of the
// table tests, the functions and actions templates use, and mistakes.
var templateSeeds = []string{
	"",
	"plain text, no actions",
	"}} braces {{",
	"{{ .app }} {{ .version }} is live in {{ .environment }}",
	"<p>The rollout of <b>{{ .app }}</b> {{ .version }} finished.</p>",
	`{"app": {{ json .app }}, "env": {{ json .environment }}}`,
	"line one\nline two {{ .app }\n",
	"{{ if .app }}unterminated",
	"{{ shout .app }}",
	"ok\n{{ .app }} by {{ .author }}",
	"<p>fine</p>\n<a href=\"{{ .app }}",
	"{{ .app",
	"{{ .nope }}",
	"{{ .kind }}/{{ .name }}: {{ .reason }}",
	"{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}",
	"{{ range . }}{{ . }}{{ else }}empty{{ end }}",
	"{{ range .app }}{{ . }}{{ end }}",
	"{{ with .app }}{{ . | printf \"%q\" }}{{ end }}",
	"{{ printf \"%5.2s|%-4v\" .app 7 }}",
	"{{ index . \"app\" }} {{ len .app }} {{ slice .app 0 1 }}",
	"{{ if and (eq .app \"shop\") (ne .version \"\") }}yes{{ else if not .app }}no{{ end }}",
	"{{ $x := .app }}{{ $x = \"y\" }}{{ $x }}",
	"{{ html .app }} {{ js .app }} {{ urlquery .app }} {{ print .app 1 }} {{ println }}",
	"{{/* a comment */}}{{- .app -}}  {{- \" trimmed \" -}}",
	"{{ define \"t\" }}[{{ . }}]{{ end }}{{ template \"t\" .app }}",
	"{{ block \"b\" . }}{{ .app }}{{ end }}",
	"{{ define \"loop\" }}{{ template \"loop\" . }}{{ end }}{{ template \"loop\" . }}",
	"{{ json . }}",
	"{{ call .app }}",
	"{{ .app.field }}",
	"{{ break }}",
	"{{ range . }}{{ break }}{{ end }}",
	"{{ 'x' }} {{ 1.5e3 }} {{ 0x1F }} {{ true }} {{ nil }}",
	"<script>var x = {{ .app }};</script><a href=\"/q?{{ .app }}\">{{ .app }}</a>",
	"<p title='{{ .app }}'>{{ . }}</p>",
	"<style>p { color: {{ .app }} }</style>",
	"<!-- {{ .app }} -->",
	// Unbounded constructs, rejected before they run (bounds.go).
	"{{ range 1000000000 }}{{ end }}",
	"{{ range 1000000000 }}{{ range 1000000000 }}{{ end }}{{ end }}",
	"{{ range . }}{{ range $ }}{{ end }}{{ end }}",
	"{{ with 1000000000 }}{{ range . }}{{ end }}{{ end }}",
	"{{ $n := 1000000000 }}{{ range $n }}{{ end }}",
	"{{ $ := 1000000000 }}{{ range $ }}{{ end }}",
	"{{ range (len .app) }}{{ end }}",
	"{{ range 'x' }}{{ end }}",
	// Output and memory: strings may not outgrow the field.
	"{{ printf \"%1000000s\" \"\" }}",
	"{{ printf \"%*d\" 1000000 1 }}",
	"{{ printf \"%.1000000f\" 1.0 }}",
	"{{ $a := printf \"%4000s\" \"\" }}{{ $a = print $a $a }}{{ $a = print $a $a }}{{ len $a }}",
	"{{ range . }}{{ printf \"%2000s\" . }}{{ end }}",
	"{{ js .app }}{{ html .app }}{{ urlquery .app }}{{ println .app }}",
}

// FuzzText renders arbitrary template sources with an arbitrary param. It
// must not panic; it must return within the time budget, and its output
// within the field's limit; it must give the same output or error twice; its errors
// name the field; text without actions comes out unchanged; a param is
// reached by its name and any other name is an error; Check accepts a
// template exactly when rendering it with Check's sample params works; and
// Content renders the same source the same way Text does.
func FuzzText(f *testing.F) {
	for _, src := range templateSeeds {
		f.Add(src, "app", "shop")
		f.Add(src, "app", "")
	}
	f.Add("{{ .app }}", "app", `<script>alert("x")</script>`)
	f.Add("{{ json .app }}", "app", "\xff\xfe invalid UTF-8")
	f.Add("{{ . }}", "", "empty key")
	f.Add("{{ .a-b }}", "a-b", "dash")

	f.Fuzz(func(t *testing.T, src, key, value string) {
		params := map[string]string{key: value}
		given := maps.Clone(params)

		// Rendering is bounded (bounds.go): whatever the source, it
		// returns within the time budget (checked where execution reaches
		// Herald, so allow a little beyond it) and never returns more
		// than the field's limit.
		start := time.Now()
		out, err := render.Text("title", src, params)
		if took := time.Since(start); took > 2*render.TimeBudget {
			t.Fatalf("Text(%q) took %s, beyond the budget of %s", src, took, render.TimeBudget)
		}
		if len(out) > render.FieldLimit("title") {
			t.Fatalf("Text(%q) returned %d bytes, beyond the limit of %d", src, len(out), render.FieldLimit("title"))
		}
		again, againErr := render.Text("title", src, params)
		if out != again || errString(err) != errString(againErr) {
			t.Fatalf("Text(%q) gave %q, %v, then %q, %v", src, out, err, again, againErr)
		}
		if !maps.Equal(params, given) {
			t.Fatalf("Text(%q) changed params to %v", src, params)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "title: ") {
			t.Fatalf("Text(%q) error %q does not name the field", src, err)
		}
		if err == nil && !strings.Contains(src, "{{") && out != src {
			t.Fatalf("Text(%q) = %q, want the text unchanged", src, out)
		}

		// A param is reached by name; any other name is an error, not an
		// empty string. A value longer than the field may be is an
		// output limit error.
		if isIdentifier(key) && len(value) > render.FieldLimit("title") {
			if got, err := render.Text("title", "{{ ."+key+" }}", params); !errors.Is(err, render.ErrOutputLimit) {
				t.Fatalf("Text({{ .%s }}) with %d bytes = %d bytes, %v, want an output limit error", key, len(value), len(got), err)
			}
		} else if isIdentifier(key) {
			if got, err := render.Text("title", "{{ ."+key+" }}", params); err != nil || got != value {
				t.Fatalf("Text({{ .%s }}) = %q, %v, want %q", key, got, err, value)
			}
			if got, err := render.Text("title", "{{ ."+key+"x }}", params); err == nil {
				t.Fatalf("Text({{ .%sx }}) = %q without param %sx, want an error", key, got, key)
			}
		}

		// Check renders with each param's default, or "sample" when the
		// default is empty, and must agree with rendering.
		sample := value
		if sample == "" {
			sample = "sample"
		}
		_, wantErr := render.Text("message", src, map[string]string{key: sample})
		checkErr := render.Check(&notifyv1.NotificationTemplateContent{
			Params:  []notifyv1.TemplateParam{{Name: key, Default: value}},
			Message: src,
		})
		if errString(checkErr) != errString(wantErr) {
			t.Fatalf("Check(message %q) = %v, but rendering it with the sample params gives %v", src, checkErr, wantErr)
		}

		// Content renders the title with Text's rules; the email HTML goes
		// through html/template, which must not panic either.
		tmpl := &notifyv1.NotificationTemplateContent{
			Params: []notifyv1.TemplateParam{{Name: key, Required: true}},
			Title:  src,
			Email:  &notifyv1.EmailContent{HTML: src},
		}
		spec := &notifyv1.NotificationSpec{Type: notifyv1.TypeInformational, Params: params}
		c, cErr := render.Content(spec, tmpl)
		c2, cErr2 := render.Content(spec, tmpl)
		if !reflect.DeepEqual(c, c2) || errString(cErr) != errString(cErr2) {
			t.Fatalf("Content with %q gave %+v, %v, then %+v, %v", src, c, cErr, c2, cErr2)
		}
		if err != nil {
			if errString(cErr) != errString(err) {
				t.Fatalf("Content with title %q: error %v, want Text's %v", src, cErr, err)
			}
			return
		}
		if c.Title != out {
			t.Fatalf("Content with title %q: %q, want Text's %q", src, c.Title, out)
		}
		if cErr != nil && !strings.HasPrefix(cErr.Error(), "email.html: ") {
			t.Fatalf("Content with %q: error %q, want it to name email.html", src, cErr)
		}
	})
}

// FuzzContent renders the table tests' template with arbitrary param
// values. Required params must be given and undeclared ones refused (both
// reported together); the values must come out verbatim in text, escaped in
// the email HTML and as JSON strings in the webhook payload, whatever they
// contain.
func FuzzContent(f *testing.F) {
	f.Add("shop", "1.2.3", "", "", true, false)
	f.Add("shop", "1.2.3", "staging", "", false, false)
	f.Add("shop", "", "", "", true, false)
	f.Add("shop", "", "", "", true, true)
	f.Add("shop", "1", "", "colour", true, false)
	f.Add("shop", "1", "", "colour", true, true)
	f.Add(`<script>alert("x")</script>`, `1 & 2`, "", "", true, false)
	f.Add("{{ .version }}", "'\"`<>&+", "a\x00b", "", false, false)
	f.Add("\xff\xfe", "\u2028\u2029", "</p><p>", "", false, false)
	f.Add("&amp;&#34;", "", "", "app", false, false)
	f.Add("", "", "", "version", true, true)
	f.Add(strings.Repeat("a", 1100), "1", "", "", true, false)
	f.Add(strings.Repeat("<", 1000), "1", strings.Repeat("e", 5000), "", false, false)

	f.Fuzz(func(t *testing.T, app, version, environment, extra string, defaultEnv, omitVersion bool) {
		given := map[string]string{"app": app, "version": version}
		if omitVersion {
			delete(given, "version")
		}
		if !defaultEnv {
			given["environment"] = environment
		}
		if extra != "" {
			given[extra] = "x"
		}
		spec := &notifyv1.NotificationSpec{
			Type:        notifyv1.TypeWarning,
			Category:    "deployments",
			TemplateRef: &notifyv1.TemplateReference{Name: "deploy"},
			Params:      given,
		}
		c, err := render.Content(spec, deployTemplate())
		again, againErr := render.Content(spec, deployTemplate())
		if !reflect.DeepEqual(c, again) || errString(err) != errString(againErr) {
			t.Fatalf("Content gave %+v, %v, then %+v, %v", c, err, again, againErr)
		}
		declared := extra == "" || extra == "app" || extra == "version" || extra == "environment"
		_, hasVersion := given["version"]
		if !declared || !hasVersion {
			// Both problems at once, so that one look is enough.
			if err == nil ||
				!declared && !strings.Contains(err.Error(), "params not declared by the template: "+extra) ||
				!hasVersion && !strings.Contains(err.Error(), "missing required params: version") {
				t.Fatalf("Content with params %q: error %v", given, err)
			}
			return
		}
		// Values too long for the title or the email subject hit the
		// output limit (bounds.go); escaping the same values in the
		// other fields stays well within theirs.
		wantEnv := "production"
		if e, ok := given["environment"]; ok {
			wantEnv = e
		}
		titleLen := len(given["app"] + " " + given["version"] + " is live in " + wantEnv)
		subjectLen := len("[deploy] " + given["app"] + " " + given["version"])
		if titleLen > render.FieldLimit("title") || subjectLen > render.FieldLimit("email.subject") {
			if !errors.Is(err, render.ErrOutputLimit) {
				t.Fatalf("Content with a %d-byte title and a %d-byte subject: error %v, want the output limit", titleLen, subjectLen, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Content(%q): %v", given, err)
		}
		if c.Type != spec.Type || c.Category != spec.Category {
			t.Fatalf("Content lost type or category: %+v", c)
		}

		app, version = given["app"], given["version"]
		env := "production"
		if e, ok := given["environment"]; ok {
			env = e
		}
		expect(t, c.Title, app+" "+version+" is live in "+env)
		expect(t, c.Email.Subject, "[deploy] "+app+" "+version)
		expect(t, c.WhatsApp.Text, app+" is live")
		if !reflect.DeepEqual(c.WhatsApp.Template.Params, []string{app, env}) {
			t.Fatalf("WhatsApp template params = %q, want %q", c.WhatsApp.Template.Params, []string{app, env})
		}

		// Email HTML: the values cannot add markup, and unescape to what
		// was given (html/template replaces NUL).
		const pre, mid, post = "<p>The rollout of <b>", "</b> ", " finished.</p>"
		h := c.Email.HTML
		if strings.Count(h, "<") != strings.Count(pre+mid+post, "<") || !strings.HasPrefix(h, pre) || !strings.HasSuffix(h, post) {
			t.Fatalf("email HTML %q: the params %q, %q added markup", h, app, version)
		}
		gotApp, gotVersion, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(h, pre), post), mid)
		nul := strings.NewReplacer("\x00", "\uFFFD")
		if !ok || html.UnescapeString(gotApp) != nul.Replace(app) || html.UnescapeString(gotVersion) != nul.Replace(version) {
			t.Fatalf("email HTML %q does not carry %q and %q", h, app, version)
		}

		// Webhook payload: valid JSON carrying the values (invalid UTF-8
		// becomes U+FFFD, as encoding/json does).
		var payload struct{ App, Env string }
		if err := json.Unmarshal([]byte(c.WebhookPayload), &payload); err != nil {
			t.Fatalf("webhook payload %q is not JSON: %v", c.WebhookPayload, err)
		}
		if payload.App != validUTF8(app) || payload.Env != validUTF8(env) {
			t.Fatalf("webhook payload %q, want app %q and env %q", c.WebhookPayload, app, env)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// validUTF8 replaces each byte that is not UTF-8 with U+FFFD, as
// encoding/json does.
func validUTF8(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}
