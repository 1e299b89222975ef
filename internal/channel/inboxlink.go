package channel

import (
	"errors"
	"net/url"
	"strings"
)

// InboxLink is the address of msg's notification in the inbox web page at
// base, for chat messages of approval notifications: they are answered in
// the inbox (or with kubectl), and the link takes the reader there. It is
// base with the query parameters namespace, notification and, when the
// recipient has an inbox item of its own, item (its name). It is empty
// when base is empty or not a URL, or when msg is no approval.
func InboxLink(base string, msg *Message) string {
	base = strings.TrimSpace(base)
	if base == "" || msg.Type != "approval" {
		return ""
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	q := u.Query()
	q.Set("namespace", msg.Namespace)
	q.Set("notification", msg.Notification)
	if msg.InboxItem != "" {
		q.Set("item", msg.InboxItem)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// PlainText is the generic text of msg, its title and body separated by
// a blank line, for channels that were given no text of their own.
func PlainText(msg *Message) string {
	title, body := strings.TrimSpace(msg.Title), strings.TrimSpace(msg.Body)
	switch {
	case title == "":
		return body
	case body == "":
		return title
	}
	return title + "\n\n" + body
}

// SafeCode returns a provider's error code when it is short and made of
// the characters codes are made of (letters, digits, _ . -), and
// "unrecognised" otherwise, so that an answer cannot put text of its
// choosing into status and Events through it.
func SafeCode(s string) string {
	if s == "" || len(s) > 64 {
		return "unrecognised"
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return "unrecognised"
		}
	}
	return s
}

// CheckHTTPURL checks that raw is an absolute http or https URL without
// a fragment, saying what is wrong without repeating the URL (URLs such
// as webhook addresses are credentials).
func CheckHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("is not a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("must start with https://")
	case u.Host == "":
		return errors.New("has no host")
	case u.Fragment != "":
		return errors.New("must not have a fragment")
	}
	return nil
}
