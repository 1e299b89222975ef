package delivery

import (
	"strings"
	"testing"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
)

func TestHandlersValidate(t *testing.T) {
	h := Handlers{notifyv1.ChannelInApp: InAppHandler{}}
	err := h.Validate()
	if err == nil || !strings.Contains(err.Error(), `"email"`) {
		t.Fatalf("Validate() = %v, want an error naming the email channel", err)
	}
	for _, c := range notifyv1.Channels {
		h[c] = InAppHandler{}
	}
	if err := h.Validate(); err != nil {
		t.Fatalf("Validate() = %v with every channel handled", err)
	}
}
