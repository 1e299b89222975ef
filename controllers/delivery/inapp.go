package delivery

import (
	"context"
	"fmt"
	"time"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
)

// InAppHandler delivers the in-app notifications that were not delivered
// by their creation (spec.deliveredOnCreate; the reconciler never sees
// those as unfinished): ones deferred by deliverAfter, and ones created by
// an older Herald. Such a delivery is visible in its recipient's inbox as
// soon as it is Succeeded, so sending is only that status write.
type InAppHandler struct{}

func (InAppHandler) NeedsClaim() bool { return false }

func (InAppHandler) Admit(*notifyv1.ChannelDelivery, time.Time) (time.Duration, error) {
	return 0, nil
}

func (InAppHandler) Send(_ context.Context, d *notifyv1.ChannelDelivery, _ *channel.Message) (string, channel.Result, error) {
	if d.Spec.Recipient.Username == "" {
		return "", channel.Result{}, channel.NewInvalidAddress(fmt.Errorf("recipient %s has no username", d.Spec.Recipient.Name))
	}
	return "", channel.Result{}, nil
}
