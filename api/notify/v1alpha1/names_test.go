package v1alpha1

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestLabelValue(t *testing.T) {
	if got := LabelValue("short"); got != "short" {
		t.Fatalf("LabelValue(short) = %q", got)
	}
	v := LabelValue(strings.Repeat("a-", 60))
	if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
		t.Fatalf("%q is not a valid label value: %v", v, errs)
	}
}

func TestLabelValueOfAnyName(t *testing.T) {
	for _, name := range []string{"kim@example.com", "Kim", "kim_x", "kim_", "_kim", ".", "", "ü", strings.Repeat("@", 300), "system:serviceaccount:ns:sa"} {
		if errs := validation.IsValidLabelValue(LabelValue(name)); len(errs) > 0 {
			t.Errorf("LabelValue(%q) = %q is not a valid label value: %v", name, LabelValue(name), errs)
		}
	}
	for _, name := range []string{"Kim", "kim_x", "alice", "a.b"} {
		if got := LabelValue(name); got != name {
			t.Errorf("LabelValue(%q) = %q, want it unchanged", name, got)
		}
	}
}

func TestFitText(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"too long", 5, "too …"},
		{"äöüßé", 3, "äö…"}, // characters, not bytes
	} {
		if got := FitText(c.in, c.n); got != c.want {
			t.Errorf("FitText(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
