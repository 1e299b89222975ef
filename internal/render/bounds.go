package render

import (
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"text/template/parse"
	"time"
)

// Herald is installed once per cluster and renders templates written by
// every tenant in the controller's shared workers, so a template must not
// be able to take a worker, or the controller's memory, hostage. Three
// fences keep rendering bounded:
//
//  1. Check time (every render, not only the template controller's check):
//     the parse tree is walked and the constructs that can loop without
//     bound are rejected before anything runs (see checkBounded). What is
//     left executes in time linear in the template's size times the number
//     of params, so no worker ever waits on a template.
//  2. Output: every field is written through a writer that fails once the
//     field's limit or the render's total limit is reached, and the
//     functions that build strings (printf, print, println, html, js,
//     urlquery, json) refuse to build one longer than the field's limit,
//     before they allocate it.
//  3. Time: the writer and those functions also fail once the render's
//     TimeBudget has passed. text/template takes no context, so the
//     deadline is checked where execution hands control to Herald; an
//     error there ends Execute in the calling goroutine, and no goroutine
//     is left behind.
//
// The limits are constants: they protect the controller, not a policy a
// tenant should be able to change.
const (
	// DefaultFieldLimit is the output limit of a field the CRDs do not
	// bound (email text and HTML, the webhook payload, a WhatsApp template
	// param, an EventRule's params): 128 KiB is more than any message a
	// person reads, and two such fields still fit TotalLimit.
	DefaultFieldLimit = 128 << 10
	// TotalLimit bounds all the fields of one render together. A
	// ChannelDelivery carries the rendered content, and an object must stay
	// well inside etcd's 1.5 MiB request limit along with its status
	// history; 256 KiB leaves room for that.
	TotalLimit = 256 << 10
	// TimeBudget is the wall time one render (Content, Check or Text) may
	// take. A template that passes checkBounded renders in microseconds,
	// so the budget is never reached by a real template, even on a loaded
	// node; 500ms is far enough above that not to flake, and short enough
	// that a worker that did reach it would still render twice a second.
	TimeBudget = 500 * time.Millisecond
)

// fieldLimits are the output limits of the fields whose target has a
// MaxLength in the CRDs: a little above that length, so that the API
// server, not this fence, reports a field that is only slightly too long.
var fieldLimits = map[string]int{
	// Notification spec.title is 256, a template's title source 1024, and
	// EventRules truncate a rendered title to 256 runes (up to 1 KiB of
	// UTF-8): 4 KiB covers a title built from a long Event message.
	"title": 4 << 10,
	// Notification spec.message is 16384 and a template's message source
	// 32768.
	"message": 64 << 10,
	// EmailContent.subject is 998 (RFC 5322's line length).
	"email.subject": 1 << 10,
	// WhatsAppContent.text is 4096.
	"whatsapp.text": 5 << 10,
	// SlackContent.text is 40000 (Slack truncates longer messages) and
	// blocks 65536.
	"slack.text":   48 << 10,
	"slack.blocks": 72 << 10,
	// TeamsContent.card is 28000: Teams refuses messages above about
	// 28 KB.
	"teams.card": 28 << 10,
	// TelegramContent.text is 4096 characters, as sendMessage takes.
	"telegram.text": 5 << 10,
}

// FieldLimit is the number of bytes field may render to.
func FieldLimit(field string) int {
	if n, ok := fieldLimits[field]; ok {
		return n
	}
	return DefaultFieldLimit
}

// Errors that rendering wraps when a template hits a fence; errors.Is
// finds them.
var (
	ErrUnbounded    = errors.New("not allowed")
	ErrOutputLimit  = errors.New("output limit exceeded")
	ErrTimeExceeded = errors.New("render time budget exceeded")
)

// budget is the state of one render's fences, shared by its fields.
type budget struct {
	deadline time.Time
	now      func() time.Time
	// total is what the fields rendered so far wrote.
	total int
	// field is the limit of the field being rendered.
	field int
}

func newBudget() *budget {
	return &budget{now: time.Now, deadline: time.Now().Add(TimeBudget)}
}

func (b *budget) checkTime() error {
	if b.now().After(b.deadline) {
		return fmt.Errorf("%w (%s)", ErrTimeExceeded, TimeBudget)
	}
	return nil
}

// limitedWriter collects one field's output and fails, without writing
// more, once the field's or the render's limit would be passed or the
// time budget has run out.
type limitedWriter struct {
	b   *budget
	buf strings.Builder
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if err := w.b.checkTime(); err != nil {
		return 0, err
	}
	if w.buf.Len()+len(p) > w.b.field {
		return 0, fmt.Errorf("%w: renders to more than %d bytes, the limit of this field", ErrOutputLimit, w.b.field)
	}
	if w.b.total+len(p) > TotalLimit {
		return 0, fmt.Errorf("%w: the template renders to more than %d bytes in all", ErrOutputLimit, TotalLimit)
	}
	w.b.total += len(p)
	return w.buf.Write(p)
}

// funcs are available in every template. json quotes a value as a JSON
// string, for webhook payloads: {"text": {{ json .message }}} stays valid
// JSON whatever the message contains. The builtins that build strings are
// replaced by versions that give the same results but refuse, before they
// build it, a string longer than the field may be: without that,
// {{ $a := printf "%1000000s" "" }}{{ $a = print $a $a }}… doubles a string
// in memory with every step and never writes a byte.
func (b *budget) funcs() map[string]any {
	return map[string]any{
		"json": func(v any) (string, error) {
			if err := b.allow("json", 6*argsLen(v)+2); err != nil {
				return "", err
			}
			out, err := json.Marshal(v)
			return string(out), err
		},
		"printf": func(format string, args ...any) (string, error) {
			if err := b.allow("printf", printfBound(format, args)); err != nil {
				return "", err
			}
			return fmt.Sprintf(format, args...), nil
		},
		"print": func(args ...any) (string, error) {
			if err := b.allow("print", argsLen(args...)); err != nil {
				return "", err
			}
			return fmt.Sprint(args...), nil
		},
		"println": func(args ...any) (string, error) {
			if err := b.allow("println", argsLen(args...)+1); err != nil {
				return "", err
			}
			return fmt.Sprintln(args...), nil
		},
		// An escaped byte becomes at most &#34; (5 bytes), \u003C (6)
		// or %XX (3).
		"html": func(args ...any) (string, error) {
			if err := b.allow("html", 6*argsLen(args...)); err != nil {
				return "", err
			}
			return texttemplate.HTMLEscaper(args...), nil
		},
		"js": func(args ...any) (string, error) {
			if err := b.allow("js", 6*argsLen(args...)); err != nil {
				return "", err
			}
			return texttemplate.JSEscaper(args...), nil
		},
		"urlquery": func(args ...any) (string, error) {
			if err := b.allow("urlquery", 3*argsLen(args...)); err != nil {
				return "", err
			}
			return htmltemplate.URLQueryEscaper(args...), nil
		},
	}
}

// allow fails when a function would build a string of up to bound bytes
// that the field could not hold, or when time is up.
func (b *budget) allow(fn string, bound int) error {
	if err := b.checkTime(); err != nil {
		return err
	}
	if bound > b.field {
		return fmt.Errorf("%w: %s could build a string of more than %d bytes, the limit of this field", ErrOutputLimit, fn, b.field)
	}
	return nil
}

// scalarLen bounds how a value other than a string prints: the longest
// float64 in %v, %f or %e is some 330 bytes.
const scalarLen = 400

// argsLen bounds the printed length of args (fmt.Sprint separates
// some operands with spaces). Templates only see strings, the params map,
// and the scalars of constants and builtins.
func argsLen(args ...any) int {
	n := 0
	for _, a := range args {
		switch v := a.(type) {
		case string:
			n += len(v) + 1
		case map[string]string:
			n += 8
			for k, s := range v {
				n += len(k) + len(s) + 4
			}
		default:
			n += scalarLen
		}
	}
	return n
}

// printfBound is an upper bound of len(fmt.Sprintf(format, args...)).
// Every verb may print any operand (explicit indexes reuse them): a string
// at most eight times its length (% #x writes "0xff " per byte; %+q at most
// \U0010FFFF for a 4-byte rune), any other operand at most scalarLen
// bytes; it pads to its width and precision, and a width or precision
// taken from an operand (*) counts as fmt's own maximum, 1e6. A verb fmt
// cannot apply prints %!verb(type=value); operands no verb uses are
// appended as %!(EXTRA type=value, …).
func printfBound(format string, args []any) int {
	const verbOverhead = 32
	largest, all := 0, 0
	for _, a := range args {
		n := scalarLen
		switch a.(type) {
		case string, map[string]string:
			n = 8*argsLen(a) + verbOverhead
		}
		largest = max(largest, n)
		all += n + verbOverhead
	}
	const fmtMax = 1_000_000
	n := len(format) + all + verbOverhead
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		if i < len(format) && format[i] == '%' {
			continue
		}
		n += largest + verbOverhead
		// flags, argument indexes, width, precision: add every number
		// met (a generous reading of what is width or precision).
	verb:
		for ; i < len(format); i++ {
			c := format[i]
			switch {
			case c == '*':
				n += fmtMax
			case '0' <= c && c <= '9':
				num := 0
				for ; i < len(format) && '0' <= format[i] && format[i] <= '9'; i++ {
					num = min(num*10+int(format[i]-'0'), fmtMax)
				}
				n += num
				i--
			case strings.IndexByte("+-# .[]", c) >= 0:
			default:
				break verb // the verb itself
			}
		}
	}
	return n
}

// checkBounded rejects the constructs that can make a template run
// without bound. Params are strings only, so nothing a template can reach
// needs them:
//
//   - range over anything but the params: the params map itself (. or $)
//     or one param (.name, $.name, or . inside a with of one). Go ranges
//     over integers, so {{ range 1000000000 }} would spin for half a
//     minute; a range over a variable or a function's result is refused
//     for the same reason.
//   - a range inside a range: nested loops multiply.
//   - template calls and block: a template that calls itself recurses
//     100000 levels deep, and twice per level exponentially.
//   - define: a defined template only serves template calls.
//   - declaring or assigning $, which would make range over $ range over
//     anything.
//
// The first offending construct is reported with its line and column, e.g.
// `title:1:8: {{range 1000000000}} is not allowed, since it can run without
// bound: a range may only iterate over the params …`; the renderer puts
// the field in front.
func checkBounded(name, src string) error {
	tree := parse.New(name)
	tree.Mode = parse.SkipFuncCheck
	set := map[string]*parse.Tree{}
	if _, err := tree.Parse(src, "", "", set); err != nil {
		// Callers parse with text/template or html/template first, which
		// reports syntax errors in their usual form.
		return err
	}
	c := boundsChecker{tree: tree, name: name, src: src}
	if err := c.list(tree.Root, true, 0); err != nil {
		return err
	}
	for n, t := range set {
		if t != tree {
			loc, _ := t.ErrorContext(t.Root)
			return fmt.Errorf("%s: {{define %q}} is %w: template definitions and calls are not supported, since a template that calls itself recurses without bound", loc, n, ErrUnbounded)
		}
	}
	return nil
}

type boundsChecker struct {
	tree      *parse.Tree
	name, src string
}

func (c *boundsChecker) reject(n parse.Node, construct, why string) error {
	loc, _ := c.tree.ErrorContext(n)
	return fmt.Errorf("%s: %s is %w: %s", loc, construct, ErrUnbounded, why)
}

// list walks a list of nodes. dotIsParams says whether . is the params
// map or one of its values; ranges is how many ranges enclose the list.
func (c *boundsChecker) list(l *parse.ListNode, dotIsParams bool, ranges int) error {
	if l == nil {
		return nil
	}
	for _, n := range l.Nodes {
		if err := c.node(n, dotIsParams, ranges); err != nil {
			return err
		}
	}
	return nil
}

func (c *boundsChecker) node(n parse.Node, dotIsParams bool, ranges int) error {
	switch n := n.(type) {
	case *parse.ActionNode:
		return c.pipe(n.Pipe)
	case *parse.IfNode:
		if err := c.pipe(n.Pipe); err != nil {
			return err
		}
		if err := c.list(n.List, dotIsParams, ranges); err != nil {
			return err
		}
		return c.list(n.ElseList, dotIsParams, ranges)
	case *parse.WithNode:
		if err := c.pipe(n.Pipe); err != nil {
			return err
		}
		if err := c.list(n.List, c.isParams(n.Pipe, dotIsParams), ranges); err != nil {
			return err
		}
		return c.list(n.ElseList, dotIsParams, ranges)
	case *parse.RangeNode:
		construct := "{{range " + n.Pipe.String() + "}}"
		if ranges > 0 {
			return c.reject(n, construct, "a range inside a range multiplies its iterations")
		}
		if err := c.pipe(n.Pipe); err != nil {
			return err
		}
		if !c.isParams(n.Pipe, dotIsParams) {
			return c.reject(n, construct, "a range may only iterate over the params (. or $) or one param (.name or $.name); a range over a number or a computed value can run without bound")
		}
		if err := c.list(n.List, true, ranges+1); err != nil {
			return err
		}
		// The else branch runs instead of the loop, with the outer dot.
		return c.list(n.ElseList, dotIsParams, ranges)
	case *parse.TemplateNode:
		construct := fmt.Sprintf("{{template %q}}", n.Name)
		// The node is at the template's name; the keyword before it tells
		// a block from a call.
		if strings.HasSuffix(strings.TrimRight(c.src[:min(int(n.Pos), len(c.src))], " \t\r\n"), "block") {
			construct = fmt.Sprintf("{{block %q}}", n.Name)
		}
		return c.reject(n, construct, "template calls and blocks are not supported, since a template that calls itself recurses without bound")
	}
	// Text, comments, break and continue.
	return nil
}

// pipe rejects declaring or assigning $, also in parenthesized pipelines.
func (c *boundsChecker) pipe(p *parse.PipeNode) error {
	if p == nil {
		return nil
	}
	for _, v := range p.Decl {
		if len(v.Ident) > 0 && v.Ident[0] == "$" {
			return c.reject(p, "{{"+p.String()+"}}", "$ always holds the params, so that a range over $ cannot range over anything else")
		}
	}
	for _, cmd := range p.Cmds {
		for _, a := range cmd.Args {
			if ch, ok := a.(*parse.ChainNode); ok {
				a = ch.Node
			}
			if sub, ok := a.(*parse.PipeNode); ok {
				if err := c.pipe(sub); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// isParams reports whether a pipeline is a plain reference to the params
// or to one param, with optional variable declarations: ., .name, $ or
// $.name.
func (c *boundsChecker) isParams(p *parse.PipeNode, dotIsParams bool) bool {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.DotNode:
		return dotIsParams
	case *parse.FieldNode:
		return dotIsParams && len(a.Ident) == 1
	case *parse.VariableNode:
		return a.Ident[0] == "$" && len(a.Ident) <= 2
	}
	return false
}
