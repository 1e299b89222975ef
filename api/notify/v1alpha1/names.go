package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"
)

// LabelValue fits a name into a label value (63 characters of
// [A-Za-z0-9-_.], starting and ending alphanumeric), keeping it readable
// when it already is one. Herald's labels that name an object
// (LabelNotification, LabelRecipient, ...) hold this form. A name that is
// not a valid label value as it stands (an audience user such as
// kim@example.com) is sanitised and gets a hash of the original, so two
// such names stay distinct.
func LabelValue(name string) string {
	if len(validation.IsValidLabelValue(FitName(name, 63))) == 0 && labelSafe(name) {
		return FitName(name, 63)
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	prefix := b.String()
	if len(prefix) > 52 {
		prefix = prefix[:52]
	}
	prefix = strings.Trim(prefix, "-_.")
	h := shortHash(name, 10)
	if prefix == "" {
		return h
	}
	return prefix + "-" + h
}

// labelSafe reports whether every character of s may appear in a label
// value and s starts with an alphanumeric character.
func labelSafe(s string) bool {
	for i, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || r != '-' && r != '_' && r != '.') {
			return false
		}
	}
	return true
}

// NamePrefix lowercases s and replaces every character other than
// [a-z0-9] by '-', runs of them by one, without a '-' at either end: the
// readable part of a generated object name, to which the caller appends a
// hash of what it stands for (several inputs map to one prefix).
func NamePrefix(s string) string {
	var b strings.Builder
	dash := true // drops leading dashes
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimRight(b.String(), "-")
}

// FitName shortens s to at most limit characters. A name that is too long
// keeps its start and gets a hash of the whole name, so distinct names stay
// distinct and the result is the same every time.
func FitName(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	return strings.TrimRight(s[:limit-11], "-.") + "-" + shortHash(s, 10)
}

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// FitText shortens s to at most n characters (the API's MaxLength counts
// characters, not bytes), marking the cut with an ellipsis.
func FitText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
