package receiver

import (
	"context"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/channel"
	"github.com/herald-dev/herald/internal/metrics"
	"github.com/herald-dev/herald/internal/patch"
	"github.com/herald-dev/herald/internal/receipt"
)

// ownedStatus is a verified status with the provider whose deliveries it
// may concern.
type ownedStatus struct {
	provider *notifyv1.NotificationProvider
	receipt.Status
}

// Results of one status, the label of herald_receipts_total.
const (
	resultRecorded = "recorded"
	resultReplayed = "replayed"
	resultStale    = "stale"
	resultUnknown  = "unknown_message"
	resultTooOld   = "outside_window"
	resultIgnored  = "ignored"
	resultError    = "error"
)

func stateLabel(s notifyv1.ReceiptState) string {
	if s == "" {
		return "other"
	}
	return string(s)
}

// record applies the verified statuses of one callback (foreign more
// matched no message of this provider) and answers:
//
//	200 when any status was recorded, ignored (a state Herald does not
//	    record) or stale (behind the recorded one), or there was none;
//	503 when a write failed, so the provider sends it again;
//	409 when every status was a replay of what is recorded, or lay outside
//	    the time window;
//	404 when no status matched a delivery of this provider;
//	429 when the namespace is over its rate.
func (s *Server) record(w http.ResponseWriter, r *http.Request, namespace, api string,
	statuses []ownedStatus, foreign int, classify func(int) *channel.Error) {
	ctx := r.Context()
	now := s.Clock.Now()
	var cost int
	for _, st := range statuses {
		if st.State != "" {
			cost++
		}
	}
	if cost > 0 && !s.limits.allow(namespace, cost, now) {
		w.Header().Set("Retry-After", "1")
		answer(w, api, http.StatusTooManyRequests, outcomeRateLimited, "namespace %s is over its receipt rate; retry", namespace)
		return
	}
	counts := map[string]int{resultUnknown: foreign}
	for _, st := range statuses {
		res := resultIgnored
		if st.State != "" {
			res = s.apply(ctx, st.provider, api, st.Status, classify, now)
		}
		counts[res]++
		metrics.Receipts.WithLabelValues(api, stateLabel(st.State), res).Inc()
	}
	switch {
	case counts[resultError] > 0:
		w.Header().Set("Retry-After", "5")
		answer(w, api, http.StatusServiceUnavailable, outcomeError, "a receipt could not be written; retry")
	case counts[resultRecorded] > 0:
		answer(w, api, http.StatusOK, outcomeRecorded, "recorded %d", counts[resultRecorded])
	case counts[resultStale]+counts[resultIgnored] > 0 || len(statuses)+foreign == 0:
		answer(w, api, http.StatusOK, outcomeIgnored, "nothing to record")
	case counts[resultReplayed]+counts[resultTooOld] > 0:
		answer(w, api, http.StatusConflict, outcomeReplayed, "already recorded, or outside the accepted time window")
	default:
		answer(w, api, http.StatusNotFound, outcomeUnknown, "no delivery of this provider sent that message")
	}
}

// apply records one status on the delivery that sent its message.
func (s *Server) apply(ctx context.Context, p *notifyv1.NotificationProvider, api string, st receipt.Status,
	classify func(int) *channel.Error, now time.Time) string {
	logger := log.FromContext(ctx).WithValues("namespace", p.Namespace, "provider", p.Name, "message", st.MessageID, "state", st.State)
	d, err := s.find(ctx, p, st.MessageID)
	if err != nil {
		logger.Error(err, "receipts: looking up the delivery")
		return resultError
	}
	if d == nil {
		return resultUnknown
	}
	if !st.Time.IsZero() && !s.inWindow(d, st.Time, now) {
		return resultTooOld
	}
	var failure *channel.Error
	if st.State == notifyv1.ReceiptFailed {
		failure = classify(st.Code)
	}
	verdict := receipt.Stale
	err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		verdict = receipt.Decide(d.Status.Phase, d.Status.Receipt, st.State)
		if verdict != receipt.Apply {
			return nil
		}
		next := d.DeepCopy()
		h := patch.NewHelper(next, s.Client, patch.ReceiverFieldOwner)
		receipt.Record(&next.Status, st, failure, now)
		_, err := h.Patch(ctx, next, patch.WithOptimisticLock())
		if apierrors.IsConflict(err) {
			fresh := &notifyv1.ChannelDelivery{}
			if gerr := s.APIReader.Get(ctx, client.ObjectKeyFromObject(d), fresh); gerr != nil {
				return gerr
			}
			if fresh.Status.ProviderMessageID != st.MessageID {
				verdict = receipt.Stale
				return nil
			}
			d = fresh
			return err
		}
		if err == nil {
			d = next
		}
		return err
	})
	switch {
	case err != nil:
		logger.Error(err, "receipts: writing the receipt")
		return resultError
	case verdict == receipt.Replay:
		return resultReplayed
	case verdict == receipt.Stale:
		return resultStale
	}
	if failure != nil {
		s.announceFailure(d, failure)
	}
	logger.V(1).Info("receipt recorded")
	return resultRecorded
}

// find returns the delivery of provider p whose providerMessageID is id,
// or nil.
func (s *Server) find(ctx context.Context, p *notifyv1.NotificationProvider, id string) (*notifyv1.ChannelDelivery, error) {
	var list notifyv1.ChannelDeliveryList
	if err := s.Client.List(ctx, &list, client.InNamespace(p.Namespace), client.MatchingFields{MessageIDIndex: id}); err != nil {
		return nil, err
	}
	for i := range list.Items {
		d := &list.Items[i]
		if d.Spec.Channel == notifyv1.ChannelWhatsApp && d.Status.Provider == p.Name && d.Status.ProviderMessageID == id {
			return d, nil
		}
	}
	return nil, nil
}

// inWindow reports whether a status time is believable: not older than
// MaxAge, not in the future, and not before the attempt that sent the
// message started (beyond the clock skew). A captured callback replayed
// later fails the first check.
func (s *Server) inWindow(d *notifyv1.ChannelDelivery, at, now time.Time) bool {
	skew := s.Options.ClockSkew
	if now.Sub(at) > s.Options.MaxAge || at.Sub(now) > skew {
		return false
	}
	for i := len(d.Status.History) - 1; i >= 0; i-- {
		if h := d.Status.History[i]; h.Outcome == "Succeeded" {
			return !at.Before(h.StartTime.Add(-skew))
		}
	}
	return true
}

// announceFailure emits the Warning Events of a delivery a receipt failed:
// on the delivery, and on its Notification, whose counts the notification
// controller then recomputes.
func (s *Server) announceFailure(d *notifyv1.ChannelDelivery, failure *channel.Error) {
	s.Recorder.Eventf(d, nil, corev1.EventTypeWarning, notifyv1.ReasonReceiptFailed, "Receipt",
		"the provider accepted the message, then reported it failed (%s): %s", receipt.FailedReason(failure), failure.Error())
	if owner := metav1.GetControllerOf(d); owner != nil && owner.Kind == "Notification" {
		n := &notifyv1.Notification{ObjectMeta: metav1.ObjectMeta{Name: owner.Name, Namespace: d.Namespace, UID: owner.UID}}
		s.Recorder.Eventf(n, nil, corev1.EventTypeWarning, notifyv1.ReasonReceiptFailed, "Receipt",
			"delivery %s to %q failed after the provider accepted it (%s, %s)", d.Name, d.Spec.Recipient.Name, receipt.FailedReason(failure), failure.Code)
	}
}
