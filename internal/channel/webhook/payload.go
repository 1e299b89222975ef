package webhook

import (
	"time"

	"github.com/herald-dev/herald/internal/channel"
)

// Payload is the JSON document POSTed when a message carries no custom
// WebhookPayload. Fields that are empty are left out, except id and message,
// which receivers can always rely on being present.
type Payload struct {
	// ID identifies the delivery and is stable across attempts; it equals
	// the Idempotency-Key header, so receivers can de-duplicate with either.
	ID string `json:"id"`
	// Namespace, Notification and Delivery name the Kubernetes objects
	// behind the message, for receivers that correlate with the cluster.
	Namespace    string `json:"namespace,omitempty"`
	Notification string `json:"notification,omitempty"`
	Delivery     string `json:"delivery,omitempty"`
	// Attempt is the 1-based attempt number, also sent as X-Herald-Attempt.
	Attempt int `json:"attempt,omitempty"`
	// Type and Category are the notification's classification as given by
	// its author (for example "approval" and "deployments").
	Type     string `json:"type,omitempty"`
	Category string `json:"category,omitempty"`
	Title    string `json:"title,omitempty"`
	// Message is the rendered body text.
	Message string `json:"message"`
	// Actions are the approval choices offered, if any.
	Actions []PayloadAction `json:"actions,omitempty"`
	// Recipient is the person the message is for.
	Recipient PayloadRecipient `json:"recipient,omitzero"`
	// CreatedAt is when the delivery was created, in RFC 3339.
	CreatedAt time.Time `json:"createdAt,omitzero"`
}

// PayloadAction is one approval choice.
type PayloadAction struct {
	ID    string `json:"id"`
	Label string `json:"label,omitempty"`
}

// PayloadRecipient identifies the person a message is for. The phone number
// is deliberately left out: a webhook receiver has no use for it, and every
// copy of personal data is one more to protect.
type PayloadRecipient struct {
	Name        string `json:"name,omitempty"`
	Username    string `json:"username,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
	Email       string `json:"email,omitempty"`
}

// NewPayload builds the default document for msg.
func NewPayload(msg *channel.Message) Payload {
	p := Payload{
		ID:           msg.ID,
		Namespace:    msg.Namespace,
		Notification: msg.Notification,
		Delivery:     msg.Delivery,
		Attempt:      msg.Attempt,
		Type:         msg.Type,
		Category:     msg.Category,
		Title:        msg.Title,
		Message:      msg.Body,
		Recipient: PayloadRecipient{
			Name:        msg.Recipient.Name,
			Username:    msg.Recipient.Username,
			DisplayName: msg.Recipient.DisplayName,
			Email:       msg.Recipient.Email,
		},
	}
	if !msg.CreatedAt.IsZero() {
		// UTC keeps the document independent of the controller's zone.
		p.CreatedAt = msg.CreatedAt.UTC()
	}
	for _, a := range msg.Actions {
		p.Actions = append(p.Actions, PayloadAction{ID: a.ID, Label: a.Label})
	}
	return p
}
