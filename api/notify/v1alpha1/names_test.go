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
