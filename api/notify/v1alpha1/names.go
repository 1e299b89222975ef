package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// LabelValue fits an object name into a label value (63 characters),
// keeping it readable when it already fits. Herald's labels that name an
// object (LabelNotification, LabelRecipient, ...) hold this form.
func LabelValue(name string) string {
	return FitName(name, 63)
}

// FitName shortens s to at most limit characters. A name that is too long
// keeps its start and gets a hash of the whole name, so distinct names stay
// distinct and the result is the same every time.
func FitName(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return strings.TrimRight(s[:limit-11], "-.") + "-" + hex.EncodeToString(sum[:])[:10]
}
