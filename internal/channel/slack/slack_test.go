package slack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/slack"
	"github.com/herald-dev/herald/internal/dev/providerfake"
)

func newSender(t *testing.T, fake *providerfake.Slack, mutate func(*slack.Config)) *slack.Sender {
	t.Helper()
	cfg := slack.Config{BaseURL: fake.BaseURL(), Token: fake.Token, InboxURL: "https://inbox.example.com/"}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := slack.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func message(to string) *channel.Message {
	return &channel.Message{
		ID: "uid-1", Namespace: "team-a", Delivery: "d1", Notification: "deploy", Type: "informational",
		Title: "Disk <full>", Body: "/var is 95% full",
		Recipient: channel.Recipient{Name: "ops", SlackChannelID: to},
	}
}

func TestSendPostsTextAndReturnsTS(t *testing.T) {
	fake := providerfake.NewSlack()
	defer fake.Close()
	res, err := newSender(t, fake, nil).Send(context.Background(), message("C024BE91L"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := fake.Messages()
	if len(msgs) != 1 || msgs[0].To != "C024BE91L" {
		t.Fatalf("messages %+v", msgs)
	}
	if res.ProviderMessageID != msgs[0].ID || res.ProviderMessageID == "" {
		t.Errorf("ProviderMessageID %q, want the ts %q", res.ProviderMessageID, msgs[0].ID)
	}
	// The title is bold and mrkdwn's control characters are escaped.
	if want := "*Disk &lt;full&gt;*\n/var is 95% full"; msgs[0].Text != want {
		t.Errorf("text %q, want %q", msgs[0].Text, want)
	}
	if got := msgs[0].Header.Get("Authorization"); got != "Bearer "+fake.Token {
		t.Errorf("Authorization %q", got)
	}
	if r := fake.Rejections(); len(r) != 0 {
		t.Errorf("rejections %v", r)
	}
}

func TestSendBlocksAndApprovalLink(t *testing.T) {
	fake := providerfake.NewSlack()
	defer fake.Close()
	msg := message("")
	msg.Recipient.SlackUserID = "U024BE7LH"
	msg.Type, msg.InboxItem = "approval", "deploy-inapp-ops-1234"
	msg.Actions = []channel.Action{{ID: "approve", Label: "Approve"}, {ID: "reject", Label: "Reject"}}
	msg.Slack = &channel.SlackContent{Text: "Deploy?", Blocks: `[{"type":"section","text":{"type":"mrkdwn","text":"*Deploy?*"}}]`}
	if _, err := newSender(t, fake, nil).Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	m := fake.Messages()[0]
	if m.To != "U024BE7LH" {
		t.Errorf("to %q", m.To)
	}
	link := "https://inbox.example.com/?item=deploy-inapp-ops-1234&namespace=team-a&notification=deploy"
	if !strings.Contains(m.Text, "<"+link+"|Answer in the Herald inbox>") || !strings.Contains(m.Text, "Approve, Reject") {
		t.Errorf("text %q lacks the inbox link", m.Text)
	}
	var body struct {
		Blocks []map[string]any `json:"blocks"`
	}
	_ = json.Unmarshal(m.Body, &body)
	if len(body.Blocks) != 2 || !strings.Contains(fmt.Sprint(body.Blocks[1]), link) {
		t.Errorf("blocks %v: want the template's and the link's", body.Blocks)
	}
}

func TestSendErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		spec       providerfake.ErrorSpec
		reason     notifyv1.FailureReason
		scope      channel.Scope
		retryAfter time.Duration
	}{
		{"invalid_auth", providerfake.ErrorSpec{Message: "invalid_auth"}, notifyv1.ReasonPermanent, channel.ScopeProvider, 0},
		{"account_inactive", providerfake.ErrorSpec{Message: "account_inactive"}, notifyv1.ReasonPermanent, channel.ScopeProvider, 0},
		{"token_revoked", providerfake.ErrorSpec{Message: "token_revoked"}, notifyv1.ReasonPermanent, channel.ScopeProvider, 0},
		{"missing_scope", providerfake.ErrorSpec{Message: "missing_scope"}, notifyv1.ReasonPermanent, channel.ScopeProvider, 0},
		{"channel_not_found", providerfake.ErrorSpec{Message: "channel_not_found"}, notifyv1.ReasonPermanent, channel.ScopeRecipient, 0},
		{"not_in_channel", providerfake.ErrorSpec{Message: "not_in_channel"}, notifyv1.ReasonPermanent, channel.ScopeRecipient, 0},
		{"is_archived", providerfake.ErrorSpec{Message: "is_archived"}, notifyv1.ReasonPermanent, channel.ScopeRecipient, 0},
		{"ratelimited in the body", providerfake.ErrorSpec{Message: "ratelimited", RetryAfter: "7"}, notifyv1.ReasonRateLimited, channel.ScopeMessage, 7 * time.Second},
		{"HTTP 429", providerfake.ErrorSpec{HTTPStatus: 429, RetryAfter: "30"}, notifyv1.ReasonRateLimited, channel.ScopeMessage, 30 * time.Second},
		{"internal_error", providerfake.ErrorSpec{Message: "internal_error"}, notifyv1.ReasonTransient, channel.ScopeMessage, 0},
		{"HTTP 503", providerfake.ErrorSpec{HTTPStatus: 503, Message: "service_unavailable"}, notifyv1.ReasonTransient, channel.ScopeMessage, 0},
		{"msg_too_long", providerfake.ErrorSpec{Message: "msg_too_long"}, notifyv1.ReasonPermanent, channel.ScopeMessage, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := providerfake.NewSlack()
			defer fake.Close()
			fake.FailNext(1, tc.spec)
			_, err := newSender(t, fake, nil).Send(context.Background(), message("C024BE91L"))
			var ce *channel.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not classified", err)
			}
			if ce.Reason != tc.reason || ce.Scope != tc.scope || ce.RetryAfter != tc.retryAfter {
				t.Errorf("got %s scope %q retry after %s; want %s scope %q retry after %s (%v)", ce.Reason, ce.Scope, ce.RetryAfter, tc.reason, tc.scope, tc.retryAfter, err)
			}
			if strings.Contains(err.Error(), fake.Token) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

func TestWrongTokenIsAProviderFault(t *testing.T) {
	fake := providerfake.NewSlack()
	defer fake.Close()
	s := newSender(t, fake, func(c *slack.Config) { c.Token = "xoxb-wrong" })
	_, err := s.Send(context.Background(), message("C024BE91L"))
	var ce *channel.Error
	if !errors.As(err, &ce) || !ce.ProviderFault() || !strings.Contains(ce.Code, "invalid_auth") {
		t.Fatalf("got %v, want a provider fault invalid_auth", err)
	}
}

func TestNoAddressIsInvalidAddress(t *testing.T) {
	fake := providerfake.NewSlack()
	defer fake.Close()
	_, err := newSender(t, fake, nil).Send(context.Background(), message(""))
	var ce *channel.Error
	if !errors.As(err, &ce) || ce.Reason != notifyv1.ReasonInvalidAddress {
		t.Fatalf("got %v, want InvalidAddress", err)
	}
	if fake.Requests() != 0 {
		t.Error("a request was sent")
	}
	// The provider's default channel is used when the recipient has none.
	s := newSender(t, fake, func(c *slack.Config) { c.DefaultChannel = "C0DEFAULT1" })
	if _, err := s.Send(context.Background(), message("")); err != nil || fake.Messages()[0].To != "C0DEFAULT1" {
		t.Fatalf("default channel: %v %+v", err, fake.Messages())
	}
}

func TestBadBlocksArePermanentWithoutARequest(t *testing.T) {
	fake := providerfake.NewSlack()
	defer fake.Close()
	for _, blocks := range []string{`{"type":"section"}`, `[]`, `[{"text":"no type"}]`, `[` + strings.Repeat(`{"type":"divider"},`, 50) + `{"type":"divider"}]`} {
		msg := message("C024BE91L")
		msg.Slack = &channel.SlackContent{Blocks: blocks}
		_, err := newSender(t, fake, nil).Send(context.Background(), msg)
		var ce *channel.Error
		if !errors.As(err, &ce) || ce.Reason != notifyv1.ReasonPermanent || !strings.Contains(err.Error(), "slack.blocks") {
			t.Errorf("blocks %.40q: got %v", blocks, err)
		}
	}
	if fake.Requests() != 0 {
		t.Error("a request was sent")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []slack.Config{
		{Token: ""},
		{Token: "not-a-slack-token"},
		{Token: "xoxb-a b"},
		{Token: "xoxb-1", BaseURL: "ftp://slack.example.com"},
		{Token: "xoxb-1", BaseURL: "https://slack.example.com/api?x=1"},
	} {
		_, err := slack.New(cfg)
		if err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		} else if cfg.Token != "" && strings.Contains(err.Error(), cfg.Token) {
			t.Errorf("error %q repeats the token", err)
		}
	}
}
