package delivery_test

import (
	"context"
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/controllers/delivery"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/sendercache"
)

// A provider's circuit can open between a delivery's Admit (which paced
// the provider first in its chain then) and its send. The provider the send
// then uses must still be paced: it takes a token of its own or the attempt
// waits as rate limited. Before this was checked, such a send used the
// fallback with no token at all.
func TestSendPacesAProviderAdmitDidNotPace(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := testingclock.NewFakeClock(now)
	primary, spare := &scripted{}, &scripted{}
	first := &sendercache.Entry{Name: "primary", Namespace: "ns", Channel: notifyv1.ChannelWebhook, Default: true, Ready: true,
		Sender: primary, Pacer: sendercache.NewPacer(1, 1), Fallback: []string{"spare"}}
	fallback := &sendercache.Entry{Name: "spare", Namespace: "ns", Channel: notifyv1.ChannelWebhook, Ready: true,
		Sender: spare, Pacer: sendercache.NewPacer(1.0/60, 1)}
	cache := sendercache.NewCache()
	cache.Set(first)
	cache.Set(fallback)
	h := &delivery.ProviderHandler{Channel: notifyv1.ChannelWebhook, Registry: cache, Clock: clock}

	// Another delivery used the fallback's only token a moment ago.
	if wait := fallback.Pacer.Admit("earlier-delivery", now); wait != 0 {
		t.Fatalf("the fallback's first token waited %v", wait)
	}

	d := &notifyv1.ChannelDelivery{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns", UID: "uid-d"},
		Spec: notifyv1.ChannelDeliverySpec{Channel: notifyv1.ChannelWebhook}}
	if wait, err := h.Admit(d, now); err != nil || wait != 0 {
		t.Fatalf("Admit = %v, %v; want the primary's token at once", wait, err)
	}
	first.Trip(now.Add(5*time.Minute), "rejected credentials")

	_, _, err := h.Send(context.Background(), d, &channel.Message{})
	var ce *channel.Error
	if !errors.As(err, &ce) || ce.Reason != notifyv1.ReasonRateLimited || ce.RetryAfter <= 0 {
		t.Fatalf("Send = %v; want rate limited by the fallback's pacer", err)
	}
	if spare.sends != 0 || primary.sends != 0 {
		t.Fatalf("sends: primary %d, fallback %d; want none before the fallback's token is due", primary.sends, spare.sends)
	}

	// When the reservation is due the send goes through the fallback,
	// without taking a second token.
	clock.Step(ce.RetryAfter)
	if _, _, err := h.Send(context.Background(), d, &channel.Message{}); err != nil {
		t.Fatalf("Send when due: %v", err)
	}
	if spare.sends != 1 {
		t.Fatalf("fallback sends = %d, want 1", spare.sends)
	}
}

// The token Admit gave the provider is used by the send, not a second one:
// a provider limited to one send a minute sends one delivery, and the next
// delivery admitted in the same minute waits.
func TestSendUsesTheTokenAdmitGave(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := testingclock.NewFakeClock(now)
	s := &scripted{}
	e := &sendercache.Entry{Name: "p", Namespace: "ns", Channel: notifyv1.ChannelWebhook, Default: true, Ready: true,
		Sender: s, Pacer: sendercache.NewPacer(1.0/60, 1)}
	cache := sendercache.NewCache()
	cache.Set(e)
	h := &delivery.ProviderHandler{Channel: notifyv1.ChannelWebhook, Registry: cache, Clock: clock}
	d := &notifyv1.ChannelDelivery{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns", UID: "uid-d"},
		Spec: notifyv1.ChannelDeliverySpec{Channel: notifyv1.ChannelWebhook}}
	if wait, err := h.Admit(d, now); err != nil || wait != 0 {
		t.Fatalf("Admit = %v, %v", wait, err)
	}
	if _, _, err := h.Send(context.Background(), d, &channel.Message{}); err != nil || s.sends != 1 {
		t.Fatalf("Send = %v, sends %d; want one send with Admit's token", err, s.sends)
	}
	d2 := d.DeepCopy()
	d2.UID = "uid-d2"
	if wait, _ := h.Admit(d2, now); wait <= 0 {
		t.Fatalf("a second delivery in the same minute was admitted at once")
	}
}
