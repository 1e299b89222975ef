// Package notify sends Herald notifications from Go: a controller or any
// program with a controller-runtime client builds a Notification and
// creates it. Herald's controllers do the rest (audience, preferences,
// rendering, delivery, retries).
//
//	n, err := notify.New("shop", "backup-failed/db-0/2026-11-28").
//		ToRoles("dba").
//		On(v1alpha1.ChannelInApp, v1alpha1.ChannelEmail).
//		Type(v1alpha1.TypeWarning).
//		Category("backups").
//		Title("Backup of db-0 failed").
//		Message("The nightly backup of db-0 failed: disk full.").
//		Send(ctx, c)
//
// # Idempotency
//
// Every Notification is identified by a key that the caller chooses and
// that must be unique per intended notification: the same key in the same
// namespace is the same notification. The object's name is derived from
// the key (see Name), so sending twice, from a retried reconcile or from
// two replicas, creates one Notification; the second Send returns the
// first one unchanged, even if the content given the second time differs.
// A good key names the cause and its occurrence, e.g.
// "<kind>/<name>/<reason>/<generation or date>"; a key that is reused for
// a new occurrence silently sends nothing.
package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/herald-dev/herald/api/notify/v1alpha1"
)

// AnnotationKey records the key a Notification was sent with, so that a
// Send can tell its own Notification from another object of the same name.
const AnnotationKey = "notify.herald.dev/key"

// ErrNameTaken is returned by Send when the name derived from the key is
// used by a Notification that was not sent with that key.
var ErrNameTaken = errors.New("notification name taken by another notification")

// Name returns the name of the Notification for key: the key lowercased,
// with every run of characters other than a-z and 0-9 replaced by "-",
// cut to 52 characters, then "-" and the first 10 hex digits of the
// SHA-256 of the exact key. The hash keeps keys apart that read the same
// once cleaned ("DB/0" and "db-0"); the readable part makes `kubectl get`
// useful. Names are at most 63 characters, so they also fit in labels.
func Name(key string) string {
	sum := sha256.Sum256([]byte(key))
	hash := hex.EncodeToString(sum[:])[:10]
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(key) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	slug := b.String()
	if len(slug) > 52 {
		slug = slug[:52]
	}
	slug = strings.Trim(slug, "-")
	if slug == "" {
		return "n-" + hash
	}
	return slug + "-" + hash
}

// Builder describes one Notification. Its methods set a part and return
// the builder, so calls chain; nothing is sent until Send.
type Builder struct {
	namespace, key string
	labels         map[string]string
	annotations    map[string]string
	spec           v1alpha1.NotificationSpec
	owner          client.Object
}

// New starts a Notification in namespace, identified by key (see the
// package documentation). It is informational until Type says otherwise.
func New(namespace, key string) *Builder {
	return &Builder{namespace: namespace, key: key, spec: v1alpha1.NotificationSpec{Type: v1alpha1.TypeInformational}}
}

// To adds Recipients by name.
func (b *Builder) To(users ...string) *Builder {
	b.spec.Audience.Users = appendNew(b.spec.Audience.Users, users...)
	return b
}

// ToRoles adds every Recipient with any of the roles.
func (b *Builder) ToRoles(roles ...string) *Builder {
	b.spec.Audience.Roles = appendNew(b.spec.Audience.Roles, roles...)
	return b
}

// ToSelector adds the Recipients whose labels match selector.
func (b *Builder) ToSelector(selector *metav1.LabelSelector) *Builder {
	b.spec.Audience.Selector = selector
	return b
}

// On adds delivery channels.
func (b *Builder) On(channels ...v1alpha1.Channel) *Builder {
	b.spec.Channels = appendNew(b.spec.Channels, channels...)
	return b
}

// Type sets how important the notification is. critical and approval
// override recipients' opt-outs.
func (b *Builder) Type(t v1alpha1.NotificationType) *Builder {
	b.spec.Type = t
	return b
}

// Category groups the notification for recipients' preferences.
func (b *Builder) Category(category string) *Builder {
	b.spec.Category = category
	return b
}

// Title sets the headline. Title and Message exclude Template.
func (b *Builder) Title(title string) *Builder {
	b.spec.Title = title
	return b
}

// Message sets the body text.
func (b *Builder) Message(message string) *Builder {
	b.spec.Message = message
	return b
}

// Template renders the content from the NotificationTemplate name in the
// same namespace with params.
func (b *Builder) Template(name string, params map[string]string) *Builder {
	b.spec.TemplateRef = &v1alpha1.TemplateReference{Name: name}
	for k, v := range params {
		b.Param(k, v)
	}
	return b
}

// Param sets one template param.
func (b *Builder) Param(name, value string) *Builder {
	if b.spec.Params == nil {
		b.spec.Params = map[string]string{}
	}
	b.spec.Params[name] = value
	return b
}

// Approval makes this an approval notification offering actions. Wait for
// its Approved or Rejected condition.
func (b *Builder) Approval(actions ...v1alpha1.Action) *Builder {
	b.spec.Type = v1alpha1.TypeApproval
	b.spec.Actions = append(b.spec.Actions, actions...)
	return b
}

// DeliverAfter holds every delivery until t.
func (b *Builder) DeliverAfter(t time.Time) *Builder {
	b.spec.DeliverAfter = &metav1.Time{Time: t}
	return b
}

// ExpiresAt gives up on deliveries not made by t.
func (b *Builder) ExpiresAt(t time.Time) *Builder {
	b.spec.ExpiresAt = &metav1.Time{Time: t}
	return b
}

// DeleteAfterFinished deletes the notification this long after it
// finished (whole seconds).
func (b *Builder) DeleteAfterFinished(d time.Duration) *Builder {
	s := int32(d / time.Second)
	b.spec.TTLSecondsAfterFinished = &s
	return b
}

// Label sets a label on the Notification.
func (b *Builder) Label(key, value string) *Builder {
	if b.labels == nil {
		b.labels = map[string]string{}
	}
	b.labels[key] = value
	return b
}

// Annotation sets an annotation on the Notification.
func (b *Builder) Annotation(key, value string) *Builder {
	if b.annotations == nil {
		b.annotations = map[string]string{}
	}
	b.annotations[key] = value
	return b
}

// OwnedBy makes owner (in the same namespace) the Notification's
// controller: it is deleted with owner, and a controller can watch the
// Notifications of its objects with Owns(&v1alpha1.Notification{}).
func (b *Builder) OwnedBy(owner client.Object) *Builder {
	b.owner = owner
	return b
}

// With changes any part of the spec the other methods do not cover
// (retry policy, timeout, providers, quorum).
func (b *Builder) With(change func(*v1alpha1.NotificationSpec)) *Builder {
	change(&b.spec)
	return b
}

// Build returns the Notification without creating it. It checks what the
// API server would otherwise reject, so that a mistake shows at once. The
// owner reference, if any, is added by Send, which has the scheme.
func (b *Builder) Build() (*v1alpha1.Notification, error) {
	var problems []string
	if b.namespace == "" {
		problems = append(problems, "a namespace is required")
	}
	if b.key == "" {
		problems = append(problems, "a key is required")
	}
	a := b.spec.Audience
	if len(a.Users) == 0 && len(a.Roles) == 0 && a.Selector == nil {
		problems = append(problems, "an audience is required: To, ToRoles or ToSelector")
	}
	if len(b.spec.Channels) == 0 {
		problems = append(problems, "at least one channel is required: On")
	}
	hasContent := b.spec.Title != "" || b.spec.Message != ""
	switch {
	case b.spec.TemplateRef != nil && hasContent:
		problems = append(problems, "use either Template or Title/Message, not both")
	case b.spec.TemplateRef == nil && b.spec.Message == "":
		problems = append(problems, "a Message (or a Template) is required")
	}
	if b.spec.Type == v1alpha1.TypeApproval && len(b.spec.Actions) == 0 {
		problems = append(problems, "an approval needs at least one action")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("notification %q: %s", b.key, strings.Join(problems, "; "))
	}
	n := &v1alpha1.Notification{
		ObjectMeta: metav1.ObjectMeta{
			Name:        Name(b.key),
			Namespace:   b.namespace,
			Labels:      maps.Clone(b.labels),
			Annotations: maps.Clone(b.annotations),
		},
		Spec: *b.spec.DeepCopy(),
	}
	if n.Annotations == nil {
		n.Annotations = map[string]string{}
	}
	n.Annotations[AnnotationKey] = b.key
	return n, nil
}

// Send creates the Notification, or returns the one that exists already
// for the key. With a cached client the existing one may take a moment to
// become visible after AlreadyExists; Send waits up to about two seconds.
func (b *Builder) Send(ctx context.Context, c client.Client) (*v1alpha1.Notification, error) {
	n, err := b.Build()
	if err != nil {
		return nil, err
	}
	if b.owner != nil {
		if err := controllerutil.SetControllerReference(b.owner, n, c.Scheme()); err != nil {
			return nil, fmt.Errorf("notification %q: owner: %w", b.key, err)
		}
	}
	err = c.Create(ctx, n)
	if err == nil {
		return n, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating notification %s/%s: %w", n.Namespace, n.Name, err)
	}
	existing := &v1alpha1.Notification{}
	backoff := wait.Backoff{Duration: 20 * time.Millisecond, Factor: 2, Steps: 7}
	err = wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(n), existing)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading existing notification %s/%s: %w", n.Namespace, n.Name, err)
	}
	if existing.Annotations[AnnotationKey] != b.key {
		return nil, fmt.Errorf("%w: %s/%s was not sent with key %q", ErrNameTaken, n.Namespace, n.Name, b.key)
	}
	return existing, nil
}

func appendNew[T comparable](list []T, items ...T) []T {
	for _, it := range items {
		if !slices.Contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}
