package notification

import (
	"fmt"
	"strings"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// DeliveryName is the deterministic name of the delivery of notification
// on channel to recipient. Names longer than an object name allows are
// shortened with a hash of the full name, so they stay unique.
func DeliveryName(notification string, ch notifyv1.Channel, recipient string) string {
	return notifyv1.FitName(fmt.Sprintf("%s-%s-%s", notification, strings.ToLower(string(ch)), recipient), 253)
}
