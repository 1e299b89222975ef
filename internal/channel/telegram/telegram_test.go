package telegram_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/channel/telegram"
	"github.com/herald-dev/herald/internal/dev/providerfake"
)

func newSender(t *testing.T, fake *providerfake.Telegram, token string) *telegram.Sender {
	t.Helper()
	if token == "" {
		token = fake.Token
	}
	s, err := telegram.New(telegram.Config{BaseURL: fake.BaseURL(), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func message(chat string) *channel.Message {
	return &channel.Message{
		ID: "uid-1", Namespace: "team-a", Title: "Disk full", Body: "/var is 95% full",
		Recipient: channel.Recipient{Name: "ops", TelegramChatID: chat},
	}
}

func TestSendTextAndReturnsMessageID(t *testing.T) {
	fake := providerfake.NewTelegram()
	defer fake.Close()
	res, err := newSender(t, fake, "").Send(context.Background(), message("-1001234567890"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := fake.Messages()
	if len(msgs) != 1 || msgs[0].To != "-1001234567890" || msgs[0].Text != "Disk full\n\n/var is 95% full" {
		t.Fatalf("messages %+v", msgs)
	}
	if res.ProviderMessageID != msgs[0].ID {
		t.Errorf("ProviderMessageID %q, want %q", res.ProviderMessageID, msgs[0].ID)
	}
	var body map[string]any
	_ = json.Unmarshal(msgs[0].Body, &body)
	if _, isNumber := body["chat_id"].(float64); !isNumber {
		t.Errorf("chat_id %v is not a number", body["chat_id"])
	}
	if _, has := body["parse_mode"]; has {
		t.Error("parse_mode sent for plain text")
	}
}

func TestSendTelegramContentWithParseMode(t *testing.T) {
	fake := providerfake.NewTelegram()
	defer fake.Close()
	msg := message("@herald_alerts")
	msg.Telegram = &channel.TelegramContent{Text: "<b>Disk</b> full", ParseMode: "HTML"}
	if _, err := newSender(t, fake, "").Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	m := fake.Messages()[0]
	if m.To != "@herald_alerts" || m.Text != "<b>Disk</b> full" || !strings.Contains(string(m.Body), `"parse_mode":"HTML"`) {
		t.Errorf("message %+v %s", m, m.Body)
	}
}

func TestSendErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		setup      func(*providerfake.Telegram)
		token      string
		reason     notifyv1.FailureReason
		scope      channel.Scope
		retryAfter time.Duration
	}{
		{"blocked by the user", func(f *providerfake.Telegram) { f.BlockBy("42") }, "", notifyv1.ReasonPermanent, channel.ScopeRecipient, 0},
		{"chat not found", func(f *providerfake.Telegram) { f.ForgetChat("42") }, "", notifyv1.ReasonPermanent, channel.ScopeRecipient, 0},
		{"wrong token", nil, "7000000001:AAwrongwrongwrongwrongwrong", notifyv1.ReasonPermanent, channel.ScopeProvider, 0},
		{"429 retry_after", func(f *providerfake.Telegram) {
			f.FailNext(1, providerfake.ErrorSpec{Code: 429, RetryAfter: "12"})
		}, "", notifyv1.ReasonRateLimited, channel.ScopeMessage, 12 * time.Second},
		{"502", func(f *providerfake.Telegram) { f.FailNext(1, providerfake.ErrorSpec{Code: 502}) }, "", notifyv1.ReasonTransient, channel.ScopeMessage, 0},
		{"migrated group", func(f *providerfake.Telegram) {
			f.FailNext(1, providerfake.ErrorSpec{Code: 400, Message: "Bad Request: group chat was upgraded to a supergroup chat"})
		}, "", notifyv1.ReasonPermanent, channel.ScopeMessage, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := providerfake.NewTelegram()
			defer fake.Close()
			if tc.setup != nil {
				tc.setup(fake)
			}
			_, err := newSender(t, fake, tc.token).Send(context.Background(), message("42"))
			var ce *channel.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not classified", err)
			}
			if ce.Reason != tc.reason || ce.Scope != tc.scope || ce.RetryAfter != tc.retryAfter {
				t.Errorf("got %s scope %q retry after %s; want %s scope %q retry after %s (%v)", ce.Reason, ce.Scope, ce.RetryAfter, tc.reason, tc.scope, tc.retryAfter, err)
			}
			for _, secret := range []string{fake.Token, tc.token} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains the token", err)
				}
			}
		})
	}
}

// TestTokenNeverInTransportErrors: the token is in the URL path, and a
// failed connection must not show it.
func TestTokenNeverInTransportErrors(t *testing.T) {
	fake := providerfake.NewTelegram()
	fake.Close()
	_, err := newSender(t, fake, "").Send(context.Background(), message("42"))
	if err == nil || strings.Contains(err.Error(), fake.Token) || strings.Contains(err.Error(), "/bot") {
		t.Fatalf("error %v", err)
	}
	fake2 := providerfake.NewTelegram()
	defer fake2.Close()
	fake2.StallNext(1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = newSender(t, fake2, "").Send(ctx, message("42"))
	var ce *channel.Error
	if !errors.As(err, &ce) || ce.Reason != notifyv1.ReasonTimeout || strings.Contains(err.Error(), fake2.Token) {
		t.Fatalf("stalled: %v", err)
	}
}

func TestInvalidChatIsInvalidAddress(t *testing.T) {
	fake := providerfake.NewTelegram()
	defer fake.Close()
	for _, chat := range []string{"", "abc", "@ab", "12/../getMe"} {
		_, err := newSender(t, fake, "").Send(context.Background(), message(chat))
		var ce *channel.Error
		if !errors.As(err, &ce) || ce.Reason != notifyv1.ReasonInvalidAddress {
			t.Errorf("chat %q: %v", chat, err)
		}
	}
	if fake.Requests() != 0 {
		t.Error("a request was sent")
	}
}

func TestNewRefusesMalformedTokens(t *testing.T) {
	for _, token := range []string{"", "abc", "123:short", "123:AAAAAAAAAAAAAAAAAAAAAAAA/../x", "123:AAAAAAAAAAAAAAAAAAAAAAAA?x=1"} {
		_, err := telegram.New(telegram.Config{Token: token})
		if err == nil {
			t.Errorf("token %q accepted", token)
		} else if token != "" && strings.Contains(err.Error(), token) {
			t.Errorf("error %q repeats the token", err)
		}
	}
}
