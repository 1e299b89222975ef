package email

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel/egress"
)

// TestSendRefusedDestination sends to Mailpit on loopback under the
// default egress policy, by address and by a name that resolves to it:
// both are refused before connecting, as DestinationNotAllowed. With
// loopback allowed the same sender delivers.
func TestSendRefusedDestination(t *testing.T) {
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		if host == "smtp.tenant.example" {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, errors.New("no such host")
	}
	for _, host := range []string{plainSMTP.Host(), "smtp.tenant.example"} {
		t.Run(host, func(t *testing.T) {
			cfg := plainConfig(plainSMTP)
			cfg.Host = host
			cfg.Dial = (&egress.Dialer{Policy: egress.MustNew(nil, nil), Lookup: lookup}).DialContext
			ce := sendErr(t, newSender(t, cfg), ctxTimeout(t, 10*time.Second), testMessage(t))
			if ce.Reason != notifyv1.ReasonDestinationNotAllowed || ce.Retryable() {
				t.Fatalf("reason %s (retryable %v), want DestinationNotAllowed, permanent", ce.Reason, ce.Retryable())
			}
			if !errors.Is(ce, egress.ErrNotAllowed) {
				t.Fatalf("error %v does not wrap egress.ErrNotAllowed", ce)
			}

			cfg.Dial = (&egress.Dialer{Policy: egress.MustNew([]string{"127.0.0.0/8", "::1"}, nil), Lookup: lookup}).DialContext
			msg := testMessage(t)
			mustSend(t, newSender(t, cfg), msg)
			received(t, plainSMTP, msg)
		})
	}
}
