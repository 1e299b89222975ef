package render

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestTimeBudget checks that a render whose budget has run out stops at
// the next write or function call. Templates that pass checkBounded
// never get near the budget, so the clock is moved instead.
func TestTimeBudget(t *testing.T) {
	for _, src := range []string{"static text", "{{ .a }}", `{{ $x := printf "%s" .a }}`, `{{ $x := json .a }}`} {
		r := newRenderer(map[string]string{"a": "b"})
		r.b.now = func() time.Time { return r.b.deadline.Add(time.Nanosecond) }
		if out := r.text("title", src); !errors.Is(r.err, ErrTimeExceeded) || out != "" {
			t.Errorf("%q after the deadline: %q, %v; want ErrTimeExceeded", src, out, r.err)
		}
		ok := newRenderer(map[string]string{"a": "b"})
		if ok.text("title", src); ok.err != nil {
			t.Errorf("%q within the budget: %v", src, ok.err)
		}
	}
}

func TestPrintfBound(t *testing.T) {
	for _, tc := range []struct {
		format string
		args   []any
	}{
		{"%s", []any{"abc"}},
		{"%5.2f|%-8s|%q|%x|% #x|%+q", []any{3.14159, "ab", "\xff\x00", "xyz", "xyz", "\U0010FFFF"}},
		{"%[1]s%[1]s%[1]q", []any{"\x01\x02"}},
		{"%d %d", []any{1}},
		{"%s", []any{"a", "b", 3}},
		{"%v", []any{map[string]string{"k": "v\x00"}}},
		{"%e %g %f", []any{1e308, -1e-308, 1e308}},
		{"%%%s%%", []any{"x"}},
		{"%!", nil},
		{"%08.3[1]d", []any{7}},
		{"%*d", []any{30, 1}},
	} {
		got := len(fmt.Sprintf(tc.format, tc.args...))
		if bound := printfBound(tc.format, tc.args); got > bound {
			t.Errorf("printf(%q, %v) is %d bytes, above its bound %d", tc.format, tc.args, got, bound)
		}
	}
}
