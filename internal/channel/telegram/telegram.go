// Package telegram delivers channel.Messages with a Telegram bot through
// the Bot API method sendMessage.
//
// The bot token is part of the request path (/bot<token>/sendMessage), so
// the endpoint URL is a credential: it never appears in an error, a log
// line or status. channel.PostHTTP names the endpoint by a label and
// strips URLs from transport errors.
package telegram

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/herald-dev/herald/internal/channel"
)

// DefaultBaseURL is the Bot API's address.
const DefaultBaseURL = "https://api.telegram.org"

// MaxText is the longest message text sendMessage accepts, in characters
// after entities are parsed.
const MaxText = 4096

const label = "telegram sendMessage"

// ParseModes are the parse_mode values sendMessage accepts.
var ParseModes = map[string]bool{"HTML": true, "MarkdownV2": true, "Markdown": true}

// tokenRE is the form of a token BotFather gives: the bot's numeric ID, a
// colon and a secret. Checking it keeps anything else (a slash, a query)
// from becoming part of the request path.
var tokenRE = regexp.MustCompile(`^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$`)

// chatIDRE is a numeric chat ID or a public channel's @username.
var chatIDRE = regexp.MustCompile(`^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$`)

// Config configures a Sender.
type Config struct {
	// BaseURL defaults to DefaultBaseURL.
	BaseURL string
	// Token is the bot token from BotFather. Required.
	Token string
	// HTTPClient defaults to channel.HTTPClient().
	HTTPClient *http.Client
}

// Sender sends with one bot. It is safe for concurrent use.
type Sender struct {
	endpoint string
	client   *http.Client
}

var _ channel.Sender = (*Sender)(nil)

// New validates cfg and returns a sender.
func New(cfg Config) (*Sender, error) {
	base, err := channel.BaseURL(cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, fmt.Errorf("telegram: baseURL %w", err)
	}
	token := strings.TrimSpace(cfg.Token)
	if !tokenRE.MatchString(token) {
		// Never repeat the token, not even a part of it.
		return nil, errors.New("telegram: the bot token does not look like one BotFather gives (123456789:AA...); copy it from BotFather's /token answer into the Secret")
	}
	return &Sender{endpoint: base + "/bot" + token + "/sendMessage", client: cfg.HTTPClient}, nil
}

// request is sendMessage's body. chat_id is an Integer or a String; a
// numeric ID is sent as a number.
type request struct {
	ChatID             any                `json:"chat_id"`
	Text               string             `json:"text"`
	ParseMode          string             `json:"parse_mode,omitempty"`
	LinkPreviewOptions linkPreviewOptions `json:"link_preview_options"`
}

type linkPreviewOptions struct {
	IsDisabled bool `json:"is_disabled"`
}

// Send sends msg to the recipient's chat.
func (s *Sender) Send(ctx context.Context, msg *channel.Message) (channel.Result, error) {
	chat := strings.TrimSpace(msg.Recipient.TelegramChatID)
	if !chatIDRE.MatchString(chat) {
		return channel.Result{}, channel.NewInvalidAddress(fmt.Errorf("recipient %q has no valid telegram chatID", msg.Recipient.Name))
	}
	req := request{Text: channel.PlainText(msg), LinkPreviewOptions: linkPreviewOptions{IsDisabled: true}}
	if tc := msg.Telegram; tc != nil {
		if strings.TrimSpace(tc.Text) != "" {
			req.Text = tc.Text
		}
		if tc.ParseMode != "" && !ParseModes[tc.ParseMode] {
			return channel.Result{}, channel.NewPermanent("", fmt.Errorf("telegram: parseMode %q is none of HTML, MarkdownV2, Markdown", tc.ParseMode))
		}
		req.ParseMode = tc.ParseMode
	}
	if strings.TrimSpace(req.Text) == "" {
		return channel.Result{}, channel.NewPermanent("", errors.New("telegram: the message has no text"))
	}
	if n := len([]rune(req.Text)); n > MaxText && req.ParseMode == "" {
		return channel.Result{}, channel.NewPermanent("", fmt.Errorf("telegram: the text has %d characters; Telegram accepts at most %d", n, MaxText))
	}
	if id, err := strconv.ParseInt(chat, 10, 64); err == nil {
		req.ChatID = id
	} else {
		req.ChatID = chat
	}
	body, err := json.Marshal(req)
	if err != nil {
		return channel.Result{}, channel.NewPermanent("", fmt.Errorf("telegram: encoding request: %w", err))
	}
	header := http.Header{
		"Content-Type": {"application/json"},
		"Accept":       {"application/json"},
		"User-Agent":   {"herald-telegram/1"},
	}
	resp, err := channel.PostHTTP(ctx, s.client, label, s.endpoint, header, body)
	if err != nil {
		return channel.Result{}, err
	}
	id, cerr := Classify(resp, time.Now())
	if cerr != nil {
		return channel.Result{}, cerr
	}
	return channel.Result{ProviderMessageID: id}, nil
}

// response is the Bot API's answer to every method.
type response struct {
	OK          bool   `json:"ok"`
	ErrorCode   int    `json:"error_code"`
	Description string `json:"description"`
	Result      *struct {
		MessageID int64 `json:"message_id"`
	} `json:"result"`
	Parameters *struct {
		RetryAfter      int64 `json:"retry_after"`
		MigrateToChatID int64 `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

// Classify reads a sendMessage answer: the message_id on success, a
// classified *channel.Error otherwise. The description is matched against
// the ones Telegram documents, never repeated: errors end up in status.
func Classify(r *channel.HTTPResponse, now time.Time) (string, *channel.Error) {
	var resp response
	if err := json.Unmarshal(bytes.TrimSpace(r.Body), &resp); err != nil {
		if r.OK() {
			e := channel.NewPermanent(fmt.Sprintf("http %d", r.Status),
				fmt.Errorf("%s: HTTP %d answer is not the Bot API's JSON (is the base URL right?)", label, r.Status))
			e.Scope = channel.ScopeProvider
			return "", e
		}
		return "", channel.ClassifyHTTPStatus(r.Status, r.Header, now, fmt.Sprintf("http %d", r.Status),
			fmt.Errorf("%s: HTTP %d %s", label, r.Status, http.StatusText(r.Status)))
	}
	if resp.OK && r.OK() {
		if resp.Result == nil {
			return "", nil
		}
		return strconv.FormatInt(resp.Result.MessageID, 10), nil
	}
	n := cmp.Or(resp.ErrorCode, r.Status)
	code := fmt.Sprintf("telegram %d", n)
	desc := strings.ToLower(resp.Description)
	said := func(advice string) error { return fmt.Errorf("%s: error %d: %s", label, n, advice) }
	scoped := func(scope channel.Scope, advice string) *channel.Error {
		e := channel.NewPermanent(code, said(advice))
		e.Scope = scope
		return e
	}
	switch {
	case n == http.StatusTooManyRequests:
		wait := r.RetryAfter(now)
		if p := resp.Parameters; p != nil && p.RetryAfter > 0 {
			wait = channel.ParseRetryAfter(strconv.FormatInt(p.RetryAfter, 10), now)
		}
		return "", channel.NewRateLimited(code, wait, said("too many requests; Telegram asks to wait retry_after seconds"))
	case n == http.StatusUnauthorized:
		return "", scoped(channel.ScopeProvider, "Telegram refuses the bot token; get the current one from BotFather (/token) and update the Secret")
	case n == http.StatusNotFound:
		// The Bot API answers 404 for a path with no valid token in it.
		return "", scoped(channel.ScopeProvider, "the Bot API does not know this bot; check the token in the Secret")
	case n == http.StatusForbidden:
		switch {
		case strings.Contains(desc, "blocked by the user"):
			return "", scoped(channel.ScopeRecipient, "the bot was blocked by the user; they must unblock it (or /start it again)")
		case strings.Contains(desc, "kicked"):
			return "", scoped(channel.ScopeRecipient, "the bot was removed from the chat; add it again")
		case strings.Contains(desc, "deactivated"):
			return "", scoped(channel.ScopeRecipient, "the user's account is deleted")
		case strings.Contains(desc, "can't initiate conversation"):
			return "", scoped(channel.ScopeRecipient, "a bot can only write to a user who has started a chat with it; the user must send /start to the bot first")
		}
		return "", scoped(channel.ScopeRecipient, "the bot may not write to this chat")
	case n == http.StatusBadRequest:
		switch {
		case resp.Parameters != nil && resp.Parameters.MigrateToChatID != 0:
			return "", scoped(channel.ScopeRecipient, fmt.Sprintf("the group became a supergroup; set the recipient's telegram.chatID to %d", resp.Parameters.MigrateToChatID))
		case strings.Contains(desc, "chat not found"), strings.Contains(desc, "peer_id_invalid"), strings.Contains(desc, "user not found"):
			return "", scoped(channel.ScopeRecipient, "chat not found: check the recipient's telegram.chatID, and that the user started a chat with the bot")
		case strings.Contains(desc, "can't parse entities"):
			return "", channel.NewPermanent(code, said("the text is not valid for its parse_mode; escape the reserved characters or change telegram.parseMode"))
		case strings.Contains(desc, "message is too long"):
			return "", channel.NewPermanent(code, said(fmt.Sprintf("the text is longer than %d characters", MaxText)))
		}
		return "", channel.NewPermanent(code, said("Telegram refused this message"))
	}
	if n >= 500 || r.Status >= 500 {
		e := channel.NewTransient(code, said("the Bot API failed; retrying"))
		e.RetryAfter = r.RetryAfter(now)
		return "", e
	}
	if n < 400 {
		// ok false with no error status: not the Bot API as documented.
		return "", channel.NewPermanent(code, said("unexpected answer"))
	}
	return "", channel.ClassifyHTTPStatus(n, r.Header, now, code, said("unexpected answer"))
}
