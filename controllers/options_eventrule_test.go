package controllers

import "testing"

func TestValidateEventRuleCeiling(t *testing.T) {
	for n, ok := range map[int]bool{
		-1:  false,
		0:   false,
		1:   true,
		60:  true,
		600: true,
		601: false,
	} {
		o := DefaultOptions()
		o.EventRuleMaxNotificationsPerMinute = n
		if err := o.Validate(); (err == nil) != ok {
			t.Errorf("--eventrule-max-notifications-per-minute %d: %v", n, err)
		}
	}
}

func TestValidateEventRuleNamespaceBudget(t *testing.T) {
	for n, ok := range map[int]bool{
		-1:   false,
		0:    false,
		1:    true,
		300:  true,
		6000: true,
		6001: false,
	} {
		o := DefaultOptions()
		o.EventRuleNamespaceMaxNotificationsPerMinute = n
		if err := o.Validate(); (err == nil) != ok {
			t.Errorf("--eventrule-namespace-max-notifications-per-minute %d: %v", n, err)
		}
	}
	if n := DefaultOptions().EventRuleNamespaceMaxNotificationsPerMinute; n != 300 {
		t.Errorf("default namespace budget %d, want 300 (docs/operations.md)", n)
	}
}
