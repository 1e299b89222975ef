package inbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	"github.com/herald-dev/herald/internal/inbox/stream/ssetest"
)

// sseEvent is one parsed Server-Sent Event, or one comment line (Type "").
type sseEvent struct{ ssetest.Event }

func (e sseEvent) item() *inboxv1.InboxItem {
	var it inboxv1.InboxItem
	Expect(json.Unmarshal([]byte(e.Data), &it)).To(Succeed(), "event data: %s", e.Data)
	return &it
}

func (e sseEvent) list() *inboxv1.InboxItemList {
	var l inboxv1.InboxItemList
	Expect(json.Unmarshal([]byte(e.Data), &l)).To(Succeed(), "event data: %s", e.Data)
	return &l
}

// sseStream reads an SSE response in the background, as a browser's
// fetch() reader would.
type sseStream struct {
	events chan sseEvent
	cancel context.CancelFunc
	header http.Header
}

// openStream GETs path through kube-apiserver as user and returns the
// stream, or nil and the HTTP status when it was refused.
func openStream(user, path, lastEventID string, groups ...string) (*sseStream, int) {
	ctx, cancel := context.WithCancel(suiteCtx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL(path), nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := userHTTP(user, groups...).Do(req)
	Expect(err).NotTo(HaveOccurred())
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, resp.StatusCode
	}
	Expect(resp.Header.Get("Content-Type")).To(HavePrefix("text/event-stream"))
	s := &sseStream{events: make(chan sseEvent, 1000), cancel: cancel, header: resp.Header}
	go func() {
		defer GinkgoRecover()
		defer close(s.events)
		defer resp.Body.Close()
		ssetest.Read(resp.Body, func(ev ssetest.Event) { s.events <- sseEvent{ev} })
	}()
	return s, http.StatusOK
}

func (s *sseStream) close() { s.cancel() }

// next returns the next event, skipping comments.
func (s *sseStream) next() sseEvent {
	GinkgoHelper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			Expect(ok).To(BeTrue(), "the stream ended")
			if ev.Type != "" {
				return ev
			}
		case <-timeout:
			Fail("no SSE event within 15s")
		}
	}
}

// nextComment returns the next comment line, skipping events.
func (s *sseStream) nextComment() sseEvent {
	GinkgoHelper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			Expect(ok).To(BeTrue(), "the stream ended")
			if ev.Type == "" {
				return ev
			}
		case <-timeout:
			Fail("no SSE comment within 15s")
		}
	}
}
