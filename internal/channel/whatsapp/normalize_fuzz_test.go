package whatsapp_test

import (
	"strings"
	"testing"

	"github.com/herald-dev/herald/internal/channel/whatsapp"
)

// FuzzNormalize checks Normalize on arbitrary input: it does not panic, it
// either fails with a message or returns E.164 (a "+" and 7 to 15 digits),
// that result normalises to itself whatever the default region, the
// region's case does not matter, and a region that is not two ASCII letters
// is refused.
func FuzzNormalize(f *testing.F) {
	for _, c := range normalizeCases {
		f.Add(c.phone, c.region)
	}
	for _, c := range []struct{ phone, region string }{
		// More shapes: a leading zero kept in E.164 (Italy), short
		// numbering plans (Niue, Saint Helena), vanity letters, full-width
		// and Arabic-Indic digits, RFC 3966, shared country codes.
		{"+39 06 6982 1234", ""},
		{"06 6982 1234", "IT"},
		{"+683 4002", ""},
		{"+290 22001", ""},
		{"1-800-FLOWERS", "US"},
		{"+４９１５１１２３４５６７８", ""},
		{"+٤٩١٥١١٢٣٤٥٦٧٨", ""},
		{"tel:+1-415-555-2671;ext=1", ""},
		{"tel:+1-415-555-2671", ""},
		{"+1 876 555 0123", "JM"},
		{"+7 912 345 67 89", "KZ"},
		{"011 49 151 12345678", "US"},
		{"+", "DE"},
		{"++4915112345678", ""},
		{"+49 151 12345678", " de "},
		{"015112345678", "001"},
		{"06 6982 1234", "ıt"}, // dotless ı: not IT
		{"06 6982 1234", "İT"},
		{"08 123 456 78", "ſe"}, // long s: not SE
		{"+39 06 6982 1234", "ıt"},
		{strings.Repeat("9", 300), "DE"},
		{"20100000000000", "de"}, // valid for phonenumbers, but 16 digits: not E.164
		{"+49 201 00000000000", ""},
	} {
		f.Add(c.phone, c.region)
	}

	f.Fuzz(func(t *testing.T, phone, region string) {
		got, err := whatsapp.Normalize(phone, region)
		if err != nil {
			if got != "" || err.Error() == "" {
				t.Fatalf("Normalize(%q, %q) = %q, %v: want no number and a message", phone, region, got, err)
			}
		} else if !isE164(got) {
			t.Fatalf("Normalize(%q, %q) = %q, not E.164", phone, region, got)
		}

		// An ISO 3166-1 code is two ASCII letters, in either case.
		for _, r := range []string{asciiCase(region, true), asciiCase(region, false)} {
			again, againErr := whatsapp.Normalize(phone, r)
			if again != got || (againErr == nil) != (err == nil) {
				t.Fatalf("Normalize(%q, %q) = %q, %v but with region %q = %q, %v", phone, region, got, err, r, again, againErr)
			}
		}
		if r := strings.TrimSpace(region); r != "" && !isAlpha2(r) && err == nil {
			t.Fatalf("Normalize(%q, %q) = %q: accepted a region that is not two ASCII letters", phone, region, got)
		}
		if err != nil {
			return
		}

		// A normalised number is final: it carries its country code, so no
		// default region changes it.
		for _, r := range []string{"", region, "US", "DE", "IT"} {
			again, err := whatsapp.Normalize(got, r)
			if err != nil || again != got {
				t.Fatalf("Normalize(%q, %q) = %q; normalising that with region %q gives %q, %v", phone, region, got, r, again, err)
			}
		}
	})
}

// isE164 reports whether s is "+" followed by 7 to 15 ASCII digits, the
// first not zero. (ITU-T E.164 allows at most 15 digits; the shortest
// assigned numbers, in small numbering plans such as Niue's, have 7 with
// the country code.)
func isE164(s string) bool {
	digits, ok := strings.CutPrefix(s, "+")
	if !ok || len(digits) < 7 || len(digits) > 15 || digits[0] == '0' {
		return false
	}
	return strings.Trim(digits, "0123456789") == ""
}

// asciiCase upper- or lower-cases the ASCII letters of s and nothing else.
func asciiCase(s string, upper bool) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		case !upper && 'A' <= c && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}

func isAlpha2(s string) bool {
	s = asciiCase(s, true)
	return len(s) == 2 && 'A' <= s[0] && s[0] <= 'Z' && 'A' <= s[1] && s[1] <= 'Z'
}
