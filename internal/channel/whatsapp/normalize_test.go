package whatsapp_test

import (
	"strings"
	"testing"

	"github.com/herald-dev/herald/internal/channel/whatsapp"
)

// normalizeCases are TestNormalize's cases and FuzzNormalize's first seeds:
// a phone number and default region that Normalize turns into want, or
// refuses with an error that mentions wantErr.
var normalizeCases = []struct {
	name, phone, region string
	want, wantErr       string
}{
	{name: "E.164 already", phone: "+4915112345678", want: "+4915112345678"},
	{name: "international with spaces", phone: "+49 151 1234 5678", want: "+4915112345678"},
	{name: "national with default region", phone: "015112345678", region: "DE", want: "+4915112345678"},
	{name: "national with dashes, lower-case region", phone: "0151-1234-5678", region: "de", want: "+4915112345678"},
	{name: "US national with parentheses", phone: "(415) 555-2671", region: "US", want: "+14155552671"},
	{name: "dots", phone: "+49.151.12345678", want: "+4915112345678"},
	{name: "trunk zero in parentheses", phone: "+49 (0)151 12345678", want: "+4915112345678"},
	{name: "international access code 00", phone: "00 49 151 12345678", region: "DE", want: "+4915112345678"},
	{name: "explicit country wins over region", phone: "+49 151 12345678", region: "US", want: "+4915112345678"},
	{name: "surrounding whitespace", phone: "  +44 20 7946 0958 ", want: "+442079460958"},
	{name: "India mobile", phone: "+91 98765 43210", want: "+919876543210"},

	{name: "empty", phone: "", region: "DE", wantErr: "empty"},
	{name: "blank", phone: "   ", region: "DE", wantErr: "empty"},
	{name: "letters", phone: "call me", region: "DE", wantErr: "cannot be read"},
	{name: "national without region", phone: "015112345678", wantErr: "no country code"},
	{name: "unknown region", phone: "015112345678", region: "XX", wantErr: "not a known ISO 3166-1"},
	{name: "region with a dotless i", phone: "06 6982 1234", region: "ıt", wantErr: "not a known ISO 3166-1"},
	{name: "region with a long s", phone: "08 123 456 78", region: "ſe", wantErr: "not a known ISO 3166-1"},
	{name: "too short", phone: "+1 555", wantErr: "too short"},
	{name: "too long", phone: "+49 151 1234567890123", wantErr: "too long"},
	{name: "more digits than E.164 allows", phone: "+49 201 00000000000", wantErr: "too long"},
	{name: "more digits than E.164 allows, national", phone: "0201 000000000000", region: "DE", wantErr: "too long"},
	{name: "unknown country code", phone: "+999 1234567", wantErr: "country code"},
	{name: "invalid for country", phone: "+49 151 123", wantErr: "not a valid number in DE"},
	{name: "unassigned range", phone: "+1 100 555 2671", wantErr: "not a valid number"},
	{name: "extension", phone: "+1 415 555 2671 ext. 12", wantErr: "extension"},
}

func TestNormalize(t *testing.T) {
	for _, tc := range normalizeCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := whatsapp.Normalize(tc.phone, tc.region)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Normalize(%q, %q): %v", tc.phone, tc.region, err)
				}
				if got != tc.want {
					t.Fatalf("Normalize(%q, %q) = %q, want %q", tc.phone, tc.region, got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Normalize(%q, %q) = %q, want an error", tc.phone, tc.region, got)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Normalize(%q, %q) error %q, want it to mention %q", tc.phone, tc.region, err, tc.wantErr)
			}
			// A person reading status must be able to tell which number
			// (a bad region is a provider setting, not about the number).
			if strings.TrimSpace(tc.phone) != "" && tc.wantErr != "not a known ISO 3166-1" && !strings.Contains(err.Error(), tc.phone) {
				t.Errorf("error %q does not quote the number %q", err, tc.phone)
			}
		})
	}
}
