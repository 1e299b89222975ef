package notification

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

// deliveryHashLen is the number of hex digits of the hash that ends every
// delivery name (64 bits).
const deliveryHashLen = 16

// DeliveryName is the deterministic name of the delivery of notification
// on channel to recipient. recipient may be any audience entry, including
// characters no object name allows (Kim, kim@example.com, kim_x). The name
// is a readable prefix, <notification>-<channel>-<recipient> lowercased
// with every other character replaced by '-', followed by a hash of the
// exact triple: two different triples never share a name through the
// prefix (x/email-y and x-email/y), and the result always is a valid
// object name of at most 253 characters.
func DeliveryName(notification string, ch notifyv1.Channel, recipient string) string {
	// Each part is length-prefixed, so no two triples encode alike.
	key := fmt.Sprintf("%d:%s|%d:%s|%d:%s", len(notification), notification, len(ch), ch, len(recipient), recipient)
	sum := sha256.Sum256([]byte(key))
	hash := hex.EncodeToString(sum[:])[:deliveryHashLen]
	prefix := notifyv1.NamePrefix(notification + "-" + string(ch) + "-" + recipient)
	if max := 253 - 1 - deliveryHashLen; len(prefix) > max {
		prefix = strings.TrimRight(prefix[:max], "-")
	}
	if prefix == "" {
		return hash
	}
	return prefix + "-" + hash
}
