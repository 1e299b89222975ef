package controllers

import "testing"

func TestValidateInboxURL(t *testing.T) {
	for url, ok := range map[string]bool{
		"":                              true,
		"https://herald.example.com/in": true,
		"http://127.0.0.1:8080/":        true,
		"herald.example.com":            false,
		"ftp://herald.example.com":      false,
		"https://":                      false,
	} {
		o := DefaultOptions()
		o.InboxURL = url
		if err := o.Validate(); (err == nil) != ok {
			t.Errorf("--inbox-url %q: %v", url, err)
		}
	}
}
