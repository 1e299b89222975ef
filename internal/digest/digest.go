// Package digest holds the pure rules of recipients' digests: which
// deliveries a digest holds, when its window ends, the digest delivery's
// deterministic name and its default content. The Notification reconciler
// holds deliveries with it at fan-out; the delivery reconcilers send the
// digest at the window's end.
package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/schedule"
)

// Digestible reports whether deliveries on ch can be held for a digest:
// email, WhatsApp and the chat channels. In-app items are the inbox's own
// list, and webhooks feed machines that want each event.
func Digestible(ch notifyv1.Channel) bool {
	switch ch {
	case notifyv1.ChannelEmail, notifyv1.ChannelWhatsApp, notifyv1.ChannelSlack, notifyv1.ChannelTeams, notifyv1.ChannelTelegram:
		return true
	}
	return false
}

// Find returns the first of prefs that holds a notification of typ and
// category on ch, or nil. critical and approval notifications are never
// held.
func Find(prefs []notifyv1.DigestPreference, typ notifyv1.NotificationType, category string, ch notifyv1.Channel) *notifyv1.DigestPreference {
	if !Digestible(ch) {
		return nil
	}
	if typ == "" {
		typ = notifyv1.TypeInformational
	}
	if typ != notifyv1.TypeInformational && typ != notifyv1.TypeWarning {
		return nil
	}
	for i := range prefs {
		p := &prefs[i]
		if len(p.Types) > 0 && !slices.Contains(p.Types, typ) {
			continue
		}
		if len(p.Categories) > 0 && !slices.Contains(p.Categories, category) {
			continue
		}
		return p
	}
	return nil
}

// WindowEnd is when the digest window that contains now ends: the next
// multiple of every since the Unix epoch, or the schedule's next time
// after now in timezone ("" is UTC).
func WindowEnd(p *notifyv1.DigestPreference, timezone string, now time.Time) (time.Time, error) {
	if p.Every != nil {
		every := p.Every.Duration
		if every < time.Minute {
			return time.Time{}, fmt.Errorf("digest every %s is shorter than 1m", every)
		}
		start := time.Unix(0, 0).Add(now.Sub(time.Unix(0, 0)).Truncate(every))
		return start.Add(every).UTC(), nil
	}
	s, err := schedule.Parse(p.Schedule, timezone)
	if err != nil {
		return time.Time{}, err
	}
	end := s.Next(now)
	if end.IsZero() {
		return time.Time{}, fmt.Errorf("digest schedule %q never runs", p.Schedule)
	}
	return end.UTC(), nil
}

// DeliveryName is the deterministic name of the digest delivery of
// recipient on ch for the window ending at end: a restarted controller
// finds the digest it made instead of sending another. shard is the
// notifications' controller shard (sharding.herald.dev/key, "" unsharded):
// each shard sees only its own deliveries, so each makes a digest of its
// own under its own name.
func DeliveryName(recipient string, ch notifyv1.Channel, end time.Time, shard string) string {
	key := fmt.Sprintf("%d:%s|%s|%d", len(recipient), recipient, ch, end.Unix())
	if shard != "" {
		key += "|shard=" + shard
	}
	sum := sha256.Sum256([]byte(key))
	prefix := notifyv1.NamePrefix("digest-" + recipient + "-" + string(ch))
	if len(prefix) > 200 {
		prefix = strings.TrimRight(prefix[:200], "-")
	}
	return fmt.Sprintf("%s-%d-%s", prefix, end.Unix(), hex.EncodeToString(sum[:])[:12])
}

// Item is one held notification, as a digest lists it.
type Item struct {
	Title    string
	Message  string
	Category string
	Type     notifyv1.NotificationType
	Time     time.Time
}

// maxListedMessage bounds each item's message in a digest.
const maxListedMessage = 200

// Content is the default digest: a title counting the items and a message
// listing each, oldest first, with its time in timezone.
func Content(items []Item, timezone string) (title, message string) {
	loc := time.UTC
	if l, err := time.LoadLocation(timezone); err == nil && timezone != "" {
		loc = l
	}
	var cats []string
	for _, it := range items {
		if it.Category != "" && !slices.Contains(cats, it.Category) {
			cats = append(cats, it.Category)
		}
	}
	title = fmt.Sprintf("Digest: %d notifications", len(items))
	if len(items) == 1 {
		title = "Digest: 1 notification"
	}
	if len(cats) > 0 {
		title += " (" + strings.Join(cats, ", ") + ")"
	}
	var b strings.Builder
	for i, it := range items {
		if i > 0 {
			b.WriteString("\n")
		}
		head := it.Title
		if head == "" {
			head = firstLine(it.Message)
		}
		fmt.Fprintf(&b, "%d. [%s] %s", i+1, it.Time.In(loc).Format("2006-01-02 15:04 MST"), head)
		if it.Title != "" && it.Message != "" {
			fmt.Fprintf(&b, "\n   %s", notifyv1.FitText(firstLine(it.Message), maxListedMessage))
		}
	}
	return notifyv1.FitText(title, 256), notifyv1.FitText(b.String(), 16384)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
