// Package teams delivers channel.Messages to Microsoft Teams rooms as
// Adaptive Cards, through the Workflows webhook ("When a Teams webhook
// request is received") set up for each room.
//
// A Workflows webhook URL carries its own signature: whoever holds it can
// post to the room. It is therefore a credential, read from a Secret, and
// never repeated in errors.
package teams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/herald-dev/herald/internal/channel"
)

const label = "teams workflows webhook"

// ContentType is the attachment content type of an Adaptive Card.
const ContentType = "application/vnd.microsoft.card.adaptive"

// WebhookSource gives the webhook URL of a recipient's room, from the
// Secret key the recipient names. It fails with a *channel.Error.
type WebhookSource func(ctx context.Context, ref channel.SecretKey) (string, error)

// Config configures a Sender.
type Config struct {
	// DefaultWebhookURL is the room of recipients that name none.
	DefaultWebhookURL string
	// Webhook reads a recipient's webhook URL. Required when recipients
	// may name their rooms.
	Webhook WebhookSource
	// InboxURL is the inbox web page approval cards link to.
	InboxURL string
	// HTTPClient defaults to channel.HTTPClient().
	HTTPClient *http.Client
}

// Sender posts cards. It is safe for concurrent use.
type Sender struct {
	cfg Config
}

var _ channel.Sender = (*Sender)(nil)

// New validates cfg and returns a sender.
func New(cfg Config) (*Sender, error) {
	if cfg.DefaultWebhookURL != "" {
		if err := CheckWebhookURL(cfg.DefaultWebhookURL); err != nil {
			return nil, err
		}
	}
	return &Sender{cfg: cfg}, nil
}

// CheckWebhookURL checks that raw is an absolute http(s) URL. The URL is
// never repeated in the error.
func CheckWebhookURL(raw string) error {
	if err := channel.CheckHTTPURL(strings.TrimSpace(raw)); err != nil {
		return fmt.Errorf("teams: the webhook URL %w; copy the URL of the Workflows trigger \"When a Teams webhook request is received\"", err)
	}
	return nil
}

// Send posts msg's card to the recipient's room, or the default room.
func (s *Sender) Send(ctx context.Context, msg *channel.Message) (channel.Result, error) {
	target, fromRecipient, err := s.webhook(ctx, msg)
	if err != nil {
		return channel.Result{}, err
	}
	card, err := Card(msg, channel.InboxLink(s.cfg.InboxURL, msg))
	if err != nil {
		return channel.Result{}, channel.NewPermanent("teams card", err)
	}
	body, err := json.Marshal(map[string]any{
		"type": "message",
		"attachments": []any{map[string]any{
			"contentType": ContentType,
			"contentUrl":  nil,
			"content":     card,
		}},
	})
	if err != nil {
		return channel.Result{}, channel.NewPermanent("", fmt.Errorf("teams: encoding request: %w", err))
	}
	header := http.Header{
		"Content-Type": {"application/json"},
		"User-Agent":   {"herald-teams/1"},
	}
	resp, err := channel.PostHTTP(ctx, s.cfg.HTTPClient, label, target, header, body)
	if err != nil {
		return channel.Result{}, err
	}
	if cerr := Classify(resp, time.Now(), fromRecipient); cerr != nil {
		return channel.Result{}, cerr
	}
	// Workflows answer 202 with no body: there is no message ID.
	return channel.Result{}, nil
}

// webhook is the room's URL: the recipient's, read from its Secret, or
// the provider's default.
func (s *Sender) webhook(ctx context.Context, msg *channel.Message) (target string, fromRecipient bool, err error) {
	ref := msg.Recipient.TeamsWebhook
	if ref == nil {
		if s.cfg.DefaultWebhookURL == "" {
			return "", false, channel.NewInvalidAddress(fmt.Errorf("recipient %q names no teams room, and the provider has no default webhookURLSecretRef", msg.Recipient.Name))
		}
		return s.cfg.DefaultWebhookURL, false, nil
	}
	if s.cfg.Webhook == nil {
		return "", true, channel.NewPermanent("", errors.New("teams: the sender cannot read recipients' webhook Secrets"))
	}
	u, err := s.cfg.Webhook(ctx, *ref)
	if err != nil {
		return "", true, err
	}
	return strings.TrimSpace(u), true, nil
}

// Classify reads a Workflows webhook's answer: 200 or 202 is success, 429
// and 5xx are retried (after Retry-After), 400 is a permanent refusal of
// this card. 401, 403 and 404 mean the URL is wrong or its flow was
// turned off or deleted: the fault of the room's owner, the recipient when
// the URL is the recipient's, the provider when it is the provider's
// default room.
func Classify(r *channel.HTTPResponse, now time.Time, fromRecipient bool) *channel.Error {
	if r.Status == http.StatusOK || r.Status == http.StatusAccepted {
		return nil
	}
	code := fmt.Sprintf("http %d", r.Status)
	switch r.Status {
	case http.StatusBadRequest:
		return channel.NewPermanent(code, fmt.Errorf("%s: HTTP 400: the flow refused the card; check teams.card against the Adaptive Card schema (version 1.5 or lower)", label))
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		e := channel.NewPermanent(code, fmt.Errorf("%s: HTTP %d: the webhook URL is not valid, or its flow is turned off or deleted; set up the Workflows trigger again and update the Secret", label, r.Status))
		e.Scope = channel.ScopeProvider
		if fromRecipient {
			e.Scope = channel.ScopeRecipient
		}
		return e
	}
	if r.OK() {
		// A 2xx other than 200 and 202 still means the flow accepted it.
		return nil
	}
	return channel.ClassifyHTTPStatus(r.Status, r.Header, now, code, fmt.Errorf("%s: HTTP %d %s", label, r.Status, http.StatusText(r.Status)))
}

// Card is the Adaptive Card of msg: the template's card, or one with the
// title and the body, and for approvals an action that opens the inbox
// item at link.
func Card(msg *channel.Message, link string) (map[string]any, error) {
	var card map[string]any
	if tc := msg.Teams; tc != nil && strings.TrimSpace(tc.Card) != "" {
		var err error
		if card, err = ParseCard(tc.Card); err != nil {
			return nil, err
		}
	} else {
		var body []any
		if t := strings.TrimSpace(msg.Title); t != "" {
			body = append(body, map[string]any{"type": "TextBlock", "text": t, "weight": "Bolder", "size": "Medium", "wrap": true})
		}
		if b := strings.TrimSpace(msg.Body); b != "" {
			body = append(body, map[string]any{"type": "TextBlock", "text": b, "wrap": true})
		}
		if len(body) == 0 {
			return nil, errors.New("teams: the message has neither title nor text nor a card")
		}
		card = map[string]any{
			"type":    "AdaptiveCard",
			"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
			"version": "1.4",
			"body":    body,
		}
	}
	if link != "" {
		if len(msg.Actions) > 0 {
			labels := make([]string, len(msg.Actions))
			for i, a := range msg.Actions {
				labels[i] = a.Label
			}
			body, _ := card["body"].([]any)
			card["body"] = append(body, map[string]any{"type": "TextBlock", "text": "Choices: " + strings.Join(labels, ", "), "wrap": true, "isSubtle": true})
		}
		actions, _ := card["actions"].([]any)
		card["actions"] = append(actions, map[string]any{"type": "Action.OpenUrl", "title": "Answer in the Herald inbox", "url": link})
	}
	return card, nil
}

// ParseCard checks that s is one Adaptive Card: a JSON object with "type"
// "AdaptiveCard" and a "body" or "actions" array. The error says what to
// fix in the template.
func ParseCard(s string) (map[string]any, error) {
	var card map[string]any
	if err := json.Unmarshal([]byte(s), &card); err != nil {
		return nil, fmt.Errorf("teams.card must be an Adaptive Card JSON object: %v", err)
	}
	if card["type"] != "AdaptiveCard" {
		return nil, errors.New(`teams.card must have "type": "AdaptiveCard"`)
	}
	if _, ok := card["version"].(string); !ok {
		return nil, errors.New(`teams.card needs a "version", e.g. "1.5"`)
	}
	for _, k := range []string{"body", "actions"} {
		if v, ok := card[k]; ok {
			if _, isList := v.([]any); !isList {
				return nil, fmt.Errorf("teams.card %q must be an array", k)
			}
		}
	}
	return card, nil
}
