package whatsapp_test

import (
	"strings"
	"testing"

	"github.com/herald-dev/herald/internal/channel/whatsapp"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, phone, region, want string
	}{
		{"E.164 already", "+4915112345678", "", "+4915112345678"},
		{"international with spaces", "+49 151 1234 5678", "", "+4915112345678"},
		{"national with default region", "015112345678", "DE", "+4915112345678"},
		{"national with dashes, lower-case region", "0151-1234-5678", "de", "+4915112345678"},
		{"US national with parentheses", "(415) 555-2671", "US", "+14155552671"},
		{"dots", "+49.151.12345678", "", "+4915112345678"},
		{"trunk zero in parentheses", "+49 (0)151 12345678", "", "+4915112345678"},
		{"international access code 00", "00 49 151 12345678", "DE", "+4915112345678"},
		{"explicit country wins over region", "+49 151 12345678", "US", "+4915112345678"},
		{"surrounding whitespace", "  +44 20 7946 0958 ", "", "+442079460958"},
		{"India mobile", "+91 98765 43210", "", "+919876543210"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := whatsapp.Normalize(tc.phone, tc.region)
			if err != nil {
				t.Fatalf("Normalize(%q, %q): %v", tc.phone, tc.region, err)
			}
			if got != tc.want {
				t.Fatalf("Normalize(%q, %q) = %q, want %q", tc.phone, tc.region, got, tc.want)
			}
		})
	}
}

func TestNormalizeRejects(t *testing.T) {
	tests := []struct {
		name, phone, region, wantErr string
	}{
		{"empty", "", "DE", "empty"},
		{"blank", "   ", "DE", "empty"},
		{"letters", "call me", "DE", "cannot be read"},
		{"national without region", "015112345678", "", "no country code"},
		{"unknown region", "015112345678", "XX", "not a known ISO 3166-1"},
		{"region with a dotless i", "06 6982 1234", "ıt", "not a known ISO 3166-1"},
		{"region with a long s", "08 123 456 78", "ſe", "not a known ISO 3166-1"},
		{"too short", "+1 555", "", "too short"},
		{"too long", "+49 151 1234567890123", "", "too long"},
		{"more digits than E.164 allows", "+49 201 00000000000", "", "too long"},
		{"more digits than E.164 allows, national", "0201 000000000000", "DE", "too long"},
		{"unknown country code", "+999 1234567", "", "country code"},
		{"invalid for country", "+49 151 123", "", "not a valid number in DE"},
		{"unassigned range", "+1 100 555 2671", "", "not a valid number"},
		{"extension", "+1 415 555 2671 ext. 12", "", "extension"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := whatsapp.Normalize(tc.phone, tc.region)
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
