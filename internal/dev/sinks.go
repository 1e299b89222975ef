package dev

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/herald-dev/herald/internal/dev/providerfake"
)

// SinkMessage is one message a local sink received, as the inbox page
// shows it.
type SinkMessage struct {
	Time         time.Time       `json:"time"`
	Sink         string          `json:"sink"`
	To           string          `json:"to,omitempty"`
	Notification string          `json:"notification,omitempty"`
	Text         string          `json:"text,omitempty"`
	Body         json.RawMessage `json:"body,omitempty"`
}

// sinkLog keeps the last messages of the sinks for the inbox page.
type sinkLog struct {
	mu   sync.Mutex
	msgs []SinkMessage
}

const sinkLogSize = 100

func (l *sinkLog) add(m SinkMessage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, m)
	if len(l.msgs) > sinkLogSize {
		l.msgs = l.msgs[len(l.msgs)-sinkLogSize:]
	}
}

// Messages returns the recent messages, oldest first.
func (l *sinkLog) Messages() []SinkMessage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]SinkMessage(nil), l.msgs...)
}

func listen(port int) (net.Listener, error) {
	return net.Listen("tcp", net.JoinHostPort(loopback, strconv.Itoa(port)))
}

// startSinks runs the WhatsApp sink (the WAHA fake from providerfake,
// which checks requests the way WAHA does) and the webhook sink (accepts
// any POST), both on their fixed ports, and logs what they receive.
func (e *Env) startSinks() error {
	l, err := listen(e.Ports.WhatsApp)
	if err != nil {
		return fmt.Errorf("WhatsApp sink: %w", err)
	}
	e.WhatsApp = providerfake.NewWAHA(providerfake.WithListener(l))
	// A WAHA started without WAHA_API_KEY: the demo provider needs no
	// Secret. Set before any request can arrive.
	e.WhatsApp.APIKey = ""
	e.onStop(func() error { e.WhatsApp.Close(); return nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 1; ; n++ {
			msgs, err := e.WhatsApp.WaitForMessages(ctx, n)
			if err != nil {
				return
			}
			m := msgs[n-1]
			e.sinks.add(SinkMessage{Time: time.Now(), Sink: "whatsapp", To: m.To, Text: m.Text})
			e.printf("whatsapp sink: message to %s: %q\n", m.To, oneLine(m.Text))
		}
	}()
	e.onStop(func() error { cancel(); <-done; return nil })

	if err := e.startChatSinks(); err != nil {
		return err
	}

	wl, err := listen(e.Ports.Webhook)
	if err != nil {
		return fmt.Errorf("webhook sink: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(e.serveWebhook), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(wl) }()
	e.onStop(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			return srv.Close()
		}
		return nil
	})
	return nil
}

func (e *Env) serveWebhook(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "the webhook sink takes POST requests; received ones are listed on the inbox page", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var p struct {
		Notification string `json:"notification"`
		Title        string `json:"title"`
		Message      string `json:"message"`
		Recipient    struct {
			Username string `json:"username"`
			Name     string `json:"name"`
		} `json:"recipient"`
	}
	m := SinkMessage{Time: time.Now(), Sink: "webhook"}
	if json.Unmarshal(body, &p) == nil {
		m.Body = body
		m.Notification, m.To = p.Notification, p.Recipient.Username
		if m.To == "" {
			m.To = p.Recipient.Name
		}
		m.Text = p.Title
		if m.Text == "" {
			m.Text = p.Message
		}
	} else {
		m.Text = string(body)
	}
	e.sinks.add(m)
	e.printf("webhook sink: POST %s notification=%s recipient=%s idempotency-key=%s\n", r.URL.Path, m.Notification, m.To, r.Header.Get("Idempotency-Key"))
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"received":true}`)
}

func oneLine(s string) string {
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// startChatSinks runs the Slack, Teams and Telegram contract servers on
// their fixed ports, with the demo credentials, and prints every message
// they accept.
func (e *Env) startChatSinks() error {
	l, err := listen(e.Ports.Slack)
	if err != nil {
		return fmt.Errorf("Slack sink: %w", err)
	}
	e.Slack = providerfake.NewSlack(providerfake.WithListener(l))
	e.Slack.Token = demoSlackToken
	e.onStop(func() error { e.Slack.Close(); return nil })
	e.watchSink("slack", e.Slack.Server)

	if l, err = listen(e.Ports.Teams); err != nil {
		return fmt.Errorf("Teams sink: %w", err)
	}
	e.Teams = providerfake.NewTeams(providerfake.WithListener(l))
	e.onStop(func() error { e.Teams.Close(); return nil })
	e.watchSink("teams", e.Teams.Server)

	if l, err = listen(e.Ports.Telegram); err != nil {
		return fmt.Errorf("Telegram sink: %w", err)
	}
	e.Telegram = providerfake.NewTelegram(providerfake.WithListener(l))
	e.Telegram.Token = demoTelegramToken
	e.onStop(func() error { e.Telegram.Close(); return nil })
	e.watchSink("telegram", e.Telegram.Server)
	return nil
}

// watchSink prints and lists each message srv accepts until Stop.
func (e *Env) watchSink(name string, srv *providerfake.Server) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 1; ; n++ {
			msgs, err := srv.WaitForMessages(ctx, n)
			if err != nil {
				return
			}
			m := msgs[n-1]
			e.sinks.add(SinkMessage{Time: time.Now(), Sink: name, To: m.To, Text: m.Text, Body: json.RawMessage(m.Body)})
			e.printf("%s sink: message to %s: %q\n", name, m.To, oneLine(m.Text))
		}
	}()
	e.onStop(func() error { cancel(); <-done; return nil })
}
