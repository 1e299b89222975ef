package teams_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/teams"
	"github.com/herald-dev/herald/internal/dev/providerfake"
)

// source serves recipients' webhook URLs from a map, as the factory does
// from Secrets.
func source(urls map[string]string) teams.WebhookSource {
	return func(_ context.Context, ref channel.SecretKey) (string, error) {
		u, ok := urls[ref.Name+"/"+ref.Key]
		if !ok {
			e := channel.NewPermanent("SecretNotFound", errors.New("no such Secret"))
			e.Scope = channel.ScopeRecipient
			return "", e
		}
		return u, nil
	}
}

func message() *channel.Message {
	return &channel.Message{
		ID: "uid-1", Namespace: "team-a", Notification: "deploy", Type: "informational", Title: "Disk full", Body: "/var is 95% full",
		Recipient: channel.Recipient{Name: "ops", TeamsWebhook: &channel.SecretKey{Name: "ops-room", Key: "url"}},
	}
}

func TestSendDefaultCardToTheRecipientsRoom(t *testing.T) {
	fake := providerfake.NewTeams()
	defer fake.Close()
	s, err := teams.New(teams.Config{Webhook: source(map[string]string{"ops-room/url": fake.WebhookURL("ops")})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(context.Background(), message()); err != nil {
		t.Fatal(err)
	}
	msgs := fake.Messages()
	if len(msgs) != 1 || msgs[0].To != "ops" || msgs[0].Text != "Disk full\n/var is 95% full" {
		t.Fatalf("messages %+v", msgs)
	}
	if r := fake.Rejections(); len(r) != 0 {
		t.Errorf("rejections %v", r)
	}
}

func TestSendTemplateCardWithApprovalLink(t *testing.T) {
	fake := providerfake.NewTeams()
	defer fake.Close()
	s, _ := teams.New(teams.Config{DefaultWebhookURL: fake.WebhookURL("general"), InboxURL: "https://inbox.example.com"})
	msg := message()
	msg.Recipient.TeamsWebhook = nil
	msg.Type, msg.InboxItem = "approval", "deploy-inapp-ops-1"
	msg.Actions = []channel.Action{{ID: "approve", Label: "Approve"}}
	msg.Teams = &channel.TeamsContent{Card: `{"type":"AdaptiveCard","version":"1.5","body":[{"type":"TextBlock","text":"Deploy?"}]}`}
	if _, err := s.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	m := fake.Messages()[0]
	var body struct {
		Attachments []struct {
			Content struct {
				Actions []map[string]string `json:"actions"`
			} `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(m.Body, &body); err != nil {
		t.Fatal(err)
	}
	acts := body.Attachments[0].Content.Actions
	if m.To != "general" || m.Text != "Deploy?\nChoices: Approve" || len(acts) != 1 || acts[0]["type"] != "Action.OpenUrl" ||
		acts[0]["url"] != "https://inbox.example.com?item=deploy-inapp-ops-1&namespace=team-a&notification=deploy" {
		t.Errorf("message to %q text %q actions %v", m.To, m.Text, acts)
	}
}

func TestSendErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		spec       *providerfake.ErrorSpec
		badSig     bool
		reason     notifyv1.FailureReason
		scope      channel.Scope
		retryAfter time.Duration
	}{
		{"400", &providerfake.ErrorSpec{HTTPStatus: 400, Message: "InvalidRequestContent"}, false, notifyv1.ReasonPermanent, channel.ScopeMessage, 0},
		{"429", &providerfake.ErrorSpec{HTTPStatus: 429, RetryAfter: "9"}, false, notifyv1.ReasonRateLimited, channel.ScopeMessage, 9 * time.Second},
		{"502", &providerfake.ErrorSpec{HTTPStatus: 502, RetryAfter: "3"}, false, notifyv1.ReasonTransient, channel.ScopeMessage, 3 * time.Second},
		{"wrong signature of the recipient's room", nil, true, notifyv1.ReasonPermanent, channel.ScopeRecipient, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := providerfake.NewTeams()
			defer fake.Close()
			u := fake.WebhookURL("ops")
			if tc.badSig {
				u = strings.Replace(u, "sig=", "sig=x", 1)
			}
			if tc.spec != nil {
				fake.FailNext(1, *tc.spec)
			}
			s, _ := teams.New(teams.Config{Webhook: source(map[string]string{"ops-room/url": u})})
			_, err := s.Send(context.Background(), message())
			var ce *channel.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not classified", err)
			}
			if ce.Reason != tc.reason || ce.Scope != tc.scope || ce.RetryAfter != tc.retryAfter {
				t.Errorf("got %s scope %q retry after %s; want %s scope %q retry after %s (%v)", ce.Reason, ce.Scope, ce.RetryAfter, tc.reason, tc.scope, tc.retryAfter, err)
			}
			if strings.Contains(err.Error(), "sig=") || strings.Contains(err.Error(), fake.URL) {
				t.Errorf("error %q repeats the webhook URL", err)
			}
		})
	}
}

func TestNoRoomIsInvalidAddress(t *testing.T) {
	s, _ := teams.New(teams.Config{})
	msg := message()
	msg.Recipient.TeamsWebhook = nil
	_, err := s.Send(context.Background(), msg)
	var ce *channel.Error
	if !errors.As(err, &ce) || ce.Reason != notifyv1.ReasonInvalidAddress {
		t.Fatalf("got %v", err)
	}
}

func TestCardChecks(t *testing.T) {
	for _, card := range []string{`[]`, `{"type":"Message"}`, `{"type":"AdaptiveCard"}`, `{"type":"AdaptiveCard","version":"1.5","body":{}}`} {
		if _, err := teams.ParseCard(card); err == nil {
			t.Errorf("card %s accepted", card)
		}
	}
}
