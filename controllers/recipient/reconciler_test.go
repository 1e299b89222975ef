package recipient

import (
	"strings"
	"testing"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func TestAddressProblemsNamesUnusableDigestSchedules(t *testing.T) {
	s := &notifyv1.RecipientSpec{Timezone: "Europe/Berlin", Preferences: notifyv1.Preferences{Digests: []notifyv1.DigestPreference{
		{Schedule: "0 9 * * 1-5"},
		{Schedule: "at nine"},
	}}}
	got := AddressProblems(s)
	if len(got) != 1 || !strings.HasPrefix(got[0], "preferences.digests[1]: ") || !strings.Contains(got[0], "sent one by one") {
		t.Errorf("problems = %q, want one naming preferences.digests[1]", got)
	}
}
