package delivery

import (
	"context"
	"fmt"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
)

// Handler is what a channel plugs into the generic delivery reconciler: the
// reconciler owns claiming, retries, status and metrics; the handler owns
// the choice of provider and the wire.
type Handler interface {
	// NeedsClaim is true when a send has effects outside the cluster, so an
	// attempt must be recorded (phase Sending) before it starts. In-app
	// delivery has none and skips that write.
	NeedsClaim() bool
	// Admit returns how long the delivery must wait for its provider's rate
	// limit (zero: go now). A *Wait error means the delivery must wait for
	// a provider that is suspended or whose circuit is open: it uses no
	// attempt, and its status says why. Any other error means the delivery
	// cannot be attempted (no usable provider, through its own
	// configuration), and counts as a failed attempt.
	Admit(d *notifyv1.ChannelDelivery, now time.Time) (time.Duration, error)
	// Send makes one attempt and returns the provider that made it.
	Send(ctx context.Context, d *notifyv1.ChannelDelivery, msg *channel.Message) (providerName string, res channel.Result, err error)
}

// Wait is Admit's answer when every provider a delivery could use is
// suspended or has an open circuit: nothing is wrong with the delivery, and
// the wait ends by itself (the circuit closes after the trip duration), so
// it uses no attempt. Reason and Message become the delivery's status.
type Wait struct {
	For     time.Duration
	Reason  string
	Message string
}

func (w *Wait) Error() string { return w.Message }

// Handlers maps each channel to its handler.
type Handlers map[notifyv1.Channel]Handler

// Validate fails unless every channel the API accepts has a handler, so a
// channel can never be accepted at admission and then silently ignored (the
// predecessor's failure).
func (h Handlers) Validate() error {
	for _, c := range notifyv1.Channels {
		if h[c] == nil {
			return fmt.Errorf("no delivery handler registered for channel %q", c)
		}
	}
	return nil
}
