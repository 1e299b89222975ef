// Package slack delivers channel.Messages to Slack with a bot token
// through the Web API method chat.postMessage.
//
// Slack answers almost every call with HTTP 200, and tells failure apart in
// the body: {"ok": false, "error": "channel_not_found"}. The error code
// decides the class: a revoked or invalid token is the provider's fault
// (its circuit opens and deliveries fall back), an unknown or archived
// conversation the recipient's, and "ratelimited" (or HTTP 429) waits for
// Retry-After.
package slack

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/herald-dev/herald/internal/channel"
)

// DefaultBaseURL is Slack's Web API.
const DefaultBaseURL = "https://slack.com/api"

// MaxBlocks is the most blocks Slack accepts in one message.
const MaxBlocks = 50

const label = "slack chat.postMessage"

// Config configures a Sender.
type Config struct {
	// BaseURL defaults to DefaultBaseURL.
	BaseURL string
	// Token is the bot user OAuth token (xoxb-...). Required.
	Token string
	// DefaultChannel is the conversation used for recipients without a
	// Slack address.
	DefaultChannel string
	// InboxURL is the inbox web page approval messages link to.
	InboxURL string
	// HTTPClient defaults to channel.HTTPClient().
	HTTPClient *http.Client
}

// Sender posts messages with one bot token. It is safe for concurrent use.
type Sender struct {
	endpoint       string
	token          string
	defaultChannel string
	inboxURL       string
	client         *http.Client
}

var _ channel.Sender = (*Sender)(nil)

// New validates cfg and returns a sender.
func New(cfg Config) (*Sender, error) {
	base, err := channel.BaseURL(cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, fmt.Errorf("slack: baseURL %w", err)
	}
	token := strings.TrimSpace(cfg.Token)
	switch {
	case token == "":
		return nil, errors.New("slack: the bot token is empty")
	case !strings.HasPrefix(token, "xox"):
		// Never repeat the token, not even a part of it.
		return nil, errors.New("slack: the bot token does not look like a Slack token (a bot token starts with xoxb-); copy the Bot User OAuth Token from the app's OAuth & Permissions page")
	case strings.ContainsAny(token, " \t\r\n"):
		return nil, errors.New("slack: the bot token contains white space")
	}
	return &Sender{
		endpoint:       base + "/chat.postMessage",
		token:          token,
		defaultChannel: cfg.DefaultChannel,
		inboxURL:       cfg.InboxURL,
		client:         cfg.HTTPClient,
	}, nil
}

// request is the body of chat.postMessage. Blocks are passed through as
// the template rendered them, once checked to be a JSON array.
type request struct {
	Channel     string          `json:"channel"`
	Text        string          `json:"text"`
	Blocks      json.RawMessage `json:"blocks,omitempty"`
	UnfurlLinks bool            `json:"unfurl_links"`
	UnfurlMedia bool            `json:"unfurl_media"`
}

// Send posts msg to the recipient's user (a direct message from the bot)
// or conversation, or to the default channel.
func (s *Sender) Send(ctx context.Context, msg *channel.Message) (channel.Result, error) {
	to := cmp.Or(msg.Recipient.SlackChannelID, msg.Recipient.SlackUserID, s.defaultChannel)
	if to == "" {
		return channel.Result{}, channel.NewInvalidAddress(fmt.Errorf("recipient %q has no slack userID or channelID, and the provider has no defaultChannel", msg.Recipient.Name))
	}
	body, err := s.body(to, msg)
	if err != nil {
		return channel.Result{}, err
	}
	header := http.Header{
		"Authorization": {"Bearer " + s.token},
		"Content-Type":  {"application/json; charset=utf-8"},
		"Accept":        {"application/json"},
		"User-Agent":    {"herald-slack/1"},
	}
	resp, err := channel.PostHTTP(ctx, s.client, label, s.endpoint, header, body)
	if err != nil {
		return channel.Result{}, err
	}
	ts, cerr := Classify(resp, time.Now())
	if cerr != nil {
		return channel.Result{}, cerr
	}
	return channel.Result{ProviderMessageID: ts}, nil
}

// body builds the request: the Slack text (or the title in bold and the
// body), the blocks when the template gave some, and for approvals a link
// to the inbox item, where the answer is given.
func (s *Sender) body(to string, msg *channel.Message) ([]byte, error) {
	req := request{Channel: to}
	var blocks []json.RawMessage
	if sc := msg.Slack; sc != nil {
		req.Text = sc.Text
		if strings.TrimSpace(sc.Blocks) != "" {
			var err error
			if blocks, err = ParseBlocks(sc.Blocks); err != nil {
				return nil, channel.NewPermanent("slack blocks", err)
			}
		}
	}
	if strings.TrimSpace(req.Text) == "" {
		req.Text = defaultText(msg)
	}
	if link := channel.InboxLink(s.inboxURL, msg); link != "" {
		answer := fmt.Sprintf("<%s|Answer in the Herald inbox>", link)
		if len(msg.Actions) > 0 {
			labels := make([]string, len(msg.Actions))
			for i, a := range msg.Actions {
				labels[i] = escape(a.Label)
			}
			answer = fmt.Sprintf("Choices: %s. %s", strings.Join(labels, ", "), answer)
		}
		req.Text += "\n\n" + answer
		if blocks != nil && len(blocks) < MaxBlocks {
			section, _ := json.Marshal(map[string]any{"type": "section", "text": map[string]string{"type": "mrkdwn", "text": answer}})
			blocks = append(blocks, section)
		}
	}
	if req.Text == "" && blocks == nil {
		return nil, channel.NewPermanent("", errors.New("slack: the message has neither text nor blocks"))
	}
	if blocks != nil {
		req.Blocks, _ = json.Marshal(blocks)
	}
	// Links stay unfurled off: a notification should not make Slack fetch
	// arbitrary URLs from its body.
	out, err := json.Marshal(req)
	if err != nil {
		return nil, channel.NewPermanent("", fmt.Errorf("slack: encoding request: %w", err))
	}
	return out, nil
}

// defaultText is the title in bold above the body, escaped for mrkdwn.
func defaultText(msg *channel.Message) string {
	title, body := strings.TrimSpace(msg.Title), strings.TrimSpace(msg.Body)
	switch {
	case title == "":
		return escape(body)
	case body == "":
		return "*" + escape(title) + "*"
	}
	return "*" + escape(title) + "*\n" + escape(body)
}

// escape escapes the three characters Slack's mrkdwn gives a meaning of
// its own (links, mentions), as Slack documents.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// ParseBlocks checks that s is a JSON array of at most MaxBlocks objects
// that each have a "type", what chat.postMessage takes as blocks, and
// returns them. The error says what to fix in the template.
func ParseBlocks(s string) ([]json.RawMessage, error) {
	var blocks []json.RawMessage
	if err := json.Unmarshal([]byte(s), &blocks); err != nil {
		return nil, fmt.Errorf("slack.blocks must be a JSON array of Block Kit blocks: %v", err)
	}
	if len(blocks) == 0 {
		return nil, errors.New("slack.blocks is an empty array; leave it out to send text only")
	}
	if len(blocks) > MaxBlocks {
		return nil, fmt.Errorf("slack.blocks has %d blocks; Slack accepts at most %d", len(blocks), MaxBlocks)
	}
	for i, b := range blocks {
		var typed struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(b, &typed); err != nil || typed.Type == "" {
			return nil, fmt.Errorf("slack.blocks[%d] must be an object with a \"type\", e.g. {\"type\": \"section\", ...}", i)
		}
	}
	return blocks, nil
}

// response is chat.postMessage's answer.
type response struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	TS    string `json:"ts"`
}

// Error codes of chat.postMessage and of every Web API method, by whose
// fault they are.
var (
	// The token or the app: every message through this provider meets it.
	providerErrors = map[string]string{
		"invalid_auth":            "Slack refuses the bot token; copy the Bot User OAuth Token (xoxb-) from the app's OAuth & Permissions page into the Secret",
		"not_authed":              "Slack received no token; check the Secret named by botTokenSecretRef",
		"account_inactive":        "the bot's user or workspace is deactivated; reinstall the app or use another token",
		"token_revoked":           "the bot token was revoked; reinstall the app to the workspace and update the Secret",
		"token_expired":           "the bot token expired; refresh it or turn off token rotation for the app",
		"missing_scope":           "the app lacks the chat:write scope; add it under OAuth & Permissions and reinstall the app",
		"no_permission":           "the workspace does not let the app post; ask a workspace admin",
		"not_allowed_token_type":  "this token type cannot call chat.postMessage; use the bot token (xoxb-)",
		"team_access_not_granted": "the token has no access to this workspace",
		"ekm_access_denied":       "the workspace's administrators suspended posting",
		"org_login_required":      "the workspace is migrating to an Enterprise Grid organisation; try again later or reinstall",
	}
	// The conversation or user the recipient names: another recipient is
	// not affected.
	recipientErrors = map[string]string{
		"channel_not_found":                     "no conversation with this ID is visible to the bot; check the recipient's slack.channelID (or userID)",
		"not_in_channel":                        "the bot is not a member of the conversation; invite it with /invite @<bot> in the channel",
		"is_archived":                           "the conversation is archived; unarchive it or name another",
		"user_not_found":                        "no user with this ID; check the recipient's slack.userID",
		"user_disabled":                         "the user is deactivated",
		"cannot_dm_bot":                         "the recipient's slack.userID is a bot, which cannot receive direct messages",
		"messages_tab_disabled":                 "the user cannot receive direct messages from the app: turn on the app's Messages tab (App Home)",
		"restricted_action":                     "the workspace does not let the bot post in this conversation",
		"channel_is_archived":                   "the conversation is archived; unarchive it or name another",
		"restricted_action_read_only_channel":   "the conversation is read-only for the bot",
		"restricted_action_thread_only_channel": "the conversation only accepts replies in threads",
	}
	transientErrors = map[string]bool{
		"internal_error": true, "fatal_error": true, "service_unavailable": true, "request_timeout": true,
	}
)

// Classify reads a chat.postMessage answer: the message ts on success, a
// classified *channel.Error otherwise. The answer's own text is never
// repeated, only Slack's error code, and only when it looks like one.
func Classify(r *channel.HTTPResponse, now time.Time) (string, *channel.Error) {
	if r.Status == http.StatusTooManyRequests {
		return "", channel.NewRateLimited("slack ratelimited", r.RetryAfter(now),
			fmt.Errorf("%s: HTTP 429: Slack rate-limits this app's posting; Herald waits for Retry-After", label))
	}
	if !r.OK() {
		return "", channel.ClassifyHTTPStatus(r.Status, r.Header, now, fmt.Sprintf("http %d", r.Status),
			fmt.Errorf("%s: HTTP %d %s", label, r.Status, http.StatusText(r.Status)))
	}
	var resp response
	if err := json.Unmarshal(bytes.TrimSpace(r.Body), &resp); err != nil {
		e := channel.NewPermanent(fmt.Sprintf("http %d", r.Status),
			fmt.Errorf("%s: HTTP %d answer is not Slack's JSON (is the base URL right?)", label, r.Status))
		e.Scope = channel.ScopeProvider
		return "", e
	}
	if resp.OK {
		return resp.TS, nil
	}
	code := channel.SafeCode(resp.Error)
	said := fmt.Sprintf("%s: %s", label, code)
	switch {
	case code == "ratelimited" || code == "rate_limited":
		return "", channel.NewRateLimited("slack "+code, r.RetryAfter(now), errors.New(said))
	case providerErrors[code] != "":
		e := channel.NewPermanent("slack "+code, fmt.Errorf("%s: %s", said, providerErrors[code]))
		e.Scope = channel.ScopeProvider
		return "", e
	case recipientErrors[code] != "":
		e := channel.NewPermanent("slack "+code, fmt.Errorf("%s: %s", said, recipientErrors[code]))
		e.Scope = channel.ScopeRecipient
		return "", e
	case transientErrors[code]:
		e := channel.NewTransient("slack "+code, errors.New(said))
		e.RetryAfter = r.RetryAfter(now)
		return "", e
	}
	// msg_too_long, no_text, invalid_blocks, invalid_arguments and the
	// like: this message is wrong, and sending it again changes nothing.
	return "", channel.NewPermanent("slack "+code, fmt.Errorf("%s: Slack refused this message; see the error code in Slack's chat.postMessage reference", said))
}
