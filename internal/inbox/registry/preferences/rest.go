// Package preferences is the REST storage of inbox.herald.dev/v1alpha1
// preferences: the caller's own notification preferences in a namespace.
//
// They are stored where the controller already reads them: in
// spec.preferences and spec.timezone of the caller's Recipients in that
// namespace (those whose spec.username is the caller). The inbox server
// writes only those fields, with field owner herald-inbox, and only of the
// caller's own Recipients, so a person edits their preferences without
// being able to edit Recipients. Namespace policy (an annotation on the
// Namespace) can lock categories against muting.
package preferences

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	notifyv1 "github.com/herald-dev/herald/api/notify/v1alpha1"
	"github.com/herald-dev/herald/internal/patch"
)

var resource = inboxv1.Resource("preferences")

// maxCategories matches the Recipient CRD's limit.
const maxCategories = 100

// REST serves get, update and patch of preferences/me.
type REST struct{ kube client.Client }

// NewREST returns the storage; kube reads Recipients and Namespaces and
// patches Recipients.
func NewREST(kube client.Client) *REST { return &REST{kube: kube} }

var (
	_ rest.Storage              = &REST{}
	_ rest.Scoper               = &REST{}
	_ rest.Getter               = &REST{}
	_ rest.Updater              = &REST{}
	_ rest.SingularNameProvider = &REST{}
)

func (s *REST) New() runtime.Object     { return &inboxv1.InboxPreferences{} }
func (s *REST) Destroy()                {}
func (s *REST) NamespaceScoped() bool   { return true }
func (s *REST) GetSingularName() string { return "preferences" }

func caller(ctx context.Context) string {
	if u, ok := genericapirequest.UserFrom(ctx); ok {
		return u.GetName()
	}
	return ""
}

// own returns the caller's Recipients in namespace, by name. A caller with
// none gets NotFound, as does any name but "me": nobody can address
// someone else's preferences.
func (s *REST) own(ctx context.Context, namespace, name string) ([]notifyv1.Recipient, error) {
	user := caller(ctx)
	if name != inboxv1.PreferencesName || user == "" {
		return nil, apierrors.NewNotFound(resource, name)
	}
	var list notifyv1.RecipientList
	if err := s.kube.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	var mine []notifyv1.Recipient
	for _, r := range list.Items {
		if r.Spec.Username == user && r.DeletionTimestamp == nil {
			mine = append(mine, r)
		}
	}
	if len(mine) == 0 {
		return nil, apierrors.NewNotFound(resource, name)
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].Name < mine[j].Name })
	return mine, nil
}

func (s *REST) locked(ctx context.Context, namespace string) ([]string, error) {
	var ns corev1.Namespace
	if err := s.kube.Get(ctx, types.NamespacedName{Name: namespace}, &ns); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, apierrors.NewInternalError(err)
	}
	return ParseLocked(ns.Annotations[inboxv1.LockedCategoriesAnnotation]), nil
}

// ParseLocked reads the locked-categories annotation: comma-separated
// names, blanks ignored, sorted and without repeats.
func ParseLocked(v string) []string {
	var out []string
	for _, c := range strings.Split(v, ",") {
		if c = strings.TrimSpace(c); c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// Get shows the preferences of the caller's first Recipient (by name) in
// the namespace; writes keep all of them the same.
func (s *REST) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	ns := genericapirequest.NamespaceValue(ctx)
	mine, err := s.own(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	locked, err := s.locked(ctx, ns)
	if err != nil {
		return nil, err
	}
	return view(ns, mine, locked), nil
}

func view(ns string, mine []notifyv1.Recipient, locked []string) *inboxv1.InboxPreferences {
	r := mine[0]
	p := &inboxv1.InboxPreferences{
		TypeMeta:   metav1.TypeMeta{APIVersion: inboxv1.GroupVersion.String(), Kind: "InboxPreferences"},
		ObjectMeta: metav1.ObjectMeta{Name: inboxv1.PreferencesName, Namespace: ns, ResourceVersion: r.ResourceVersion, UID: r.UID, CreationTimestamp: r.CreationTimestamp},
		Spec:       FromRecipient(r.Spec),
		Status:     inboxv1.InboxPreferencesStatus{LockedCategories: locked},
	}
	for _, m := range mine {
		p.Status.Recipients = append(p.Status.Recipients, m.Name)
	}
	return p
}

// Update validates the caller's new preferences and writes them to each
// of the caller's Recipients in the namespace: a merge patch of
// spec.preferences and spec.timezone only, with the Recipient's
// resourceVersion as precondition, retried on conflicts.
func (s *REST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, _ rest.ValidateObjectFunc, _ rest.ValidateObjectUpdateFunc, _ bool, opts *metav1.UpdateOptions) (runtime.Object, bool, error) {
	ns := genericapirequest.NamespaceValue(ctx)
	dryRun := opts != nil && len(opts.DryRun) > 0
	var out *inboxv1.InboxPreferences
	// Only a Recipient write that lost a race is tried again (on the
	// Recipients read anew); a caller's stale resourceVersion is final.
	err := retry.OnError(retry.DefaultRetry, isRaced, func() error {
		mine, err := s.own(ctx, ns, name)
		if err != nil {
			return err
		}
		locked, err := s.locked(ctx, ns)
		if err != nil {
			return err
		}
		old := view(ns, mine, locked)
		obj, err := objInfo.UpdatedObject(ctx, old.DeepCopy())
		if err != nil {
			return err
		}
		upd, ok := obj.(*inboxv1.InboxPreferences)
		if !ok {
			return apierrors.NewBadRequest(fmt.Sprintf("expected InboxPreferences, got %T", obj))
		}
		if upd.ResourceVersion != "" && upd.ResourceVersion != old.ResourceVersion {
			return apierrors.NewConflict(resource, name, fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
		}
		if errs := Validate(&upd.Spec, locked); len(errs) > 0 {
			return apierrors.NewInvalid(inboxv1.GroupVersion.WithKind("InboxPreferences").GroupKind(), name, errs)
		}
		prefs, tz := ToRecipient(upd.Spec)
		for i := range mine {
			r := &mine[i]
			// Digests are set by whoever manages the Recipient, not
			// through preferences/me: each Recipient keeps its own.
			prefs := *prefs.DeepCopy()
			prefs.Digests = r.Spec.Preferences.Digests
			if equality.Semantic.DeepEqual(r.Spec.Preferences, prefs) && r.Spec.Timezone == tz {
				continue
			}
			base := r.DeepCopy()
			r.Spec.Preferences, r.Spec.Timezone = prefs, tz
			if dryRun {
				continue
			}
			p := client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
			if err := s.kube.Patch(ctx, r, p, client.FieldOwner(patch.InboxFieldOwner)); err != nil {
				if apierrors.IsConflict(err) {
					return raced{err}
				}
				return err
			}
		}
		out = view(ns, mine, locked)
		return nil
	})
	var r raced
	if errors.As(err, &r) {
		err = r.err // out of attempts
	}
	if err != nil {
		return nil, false, err
	}
	return out, false, nil
}

// raced marks a Recipient write that conflicted with another writer's.
type raced struct{ err error }

func (r raced) Error() string { return r.err.Error() }

func isRaced(err error) bool {
	var r raced
	return errors.As(err, &r)
}

// FromRecipient shows a Recipient's preferences and timezone.
func FromRecipient(r notifyv1.RecipientSpec) inboxv1.InboxPreferencesSpec {
	p := r.Preferences
	out := inboxv1.InboxPreferencesSpec{Timezone: r.Timezone, OptOut: channelNames(p.OptOut)}
	for _, c := range p.Categories {
		out.Categories = append(out.Categories, inboxv1.InboxCategoryPreference{Category: c.Category, Channels: nonNil(channelNames(c.Channels))})
	}
	if q := p.QuietHours; q != nil {
		out.QuietHours = &inboxv1.InboxQuietHours{Start: q.Start, End: q.End, Channels: channelNames(q.Channels), AllowCritical: q.AllowCritical}
	}
	return out
}

// ToRecipient turns validated preferences into the Recipient's fields.
func ToRecipient(p inboxv1.InboxPreferencesSpec) (notifyv1.Preferences, string) {
	out := notifyv1.Preferences{OptOut: channels(p.OptOut)}
	for _, c := range p.Categories {
		out.Categories = append(out.Categories, notifyv1.CategoryPreference{Category: c.Category, Channels: nonNil(channels(c.Channels))})
	}
	if q := p.QuietHours; q != nil {
		out.QuietHours = &notifyv1.QuietHours{Start: q.Start, End: q.End, Channels: channels(q.Channels), AllowCritical: q.AllowCritical}
	}
	return out, p.Timezone
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func channelNames(cs []notifyv1.Channel) []string {
	var out []string
	for _, c := range cs {
		out = append(out, string(c))
	}
	return out
}

func channels(cs []string) []notifyv1.Channel {
	var out []notifyv1.Channel
	for _, c := range cs {
		out = append(out, notifyv1.Channel(c))
	}
	return out
}

var clockPattern = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

// Validate checks preferences as the Recipient CRD would, and refuses to
// mute a locked category.
func Validate(p *inboxv1.InboxPreferencesSpec, locked []string) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	known := channelNames(notifyv1.Channels)
	checkChannels := func(path *field.Path, cs []string) {
		seen := map[string]bool{}
		for i, c := range cs {
			switch {
			case !slices.Contains(known, c):
				errs = append(errs, field.NotSupported(path.Index(i), c, known))
			case seen[c]:
				errs = append(errs, field.Duplicate(path.Index(i), c))
			}
			seen[c] = true
		}
	}
	if p.Timezone != "" {
		if _, err := time.LoadLocation(p.Timezone); err != nil || len(p.Timezone) > 64 {
			errs = append(errs, field.Invalid(spec.Child("timezone"), p.Timezone, "not an IANA time zone name, e.g. Europe/Berlin"))
		}
	}
	checkChannels(spec.Child("optOut"), p.OptOut)
	if len(p.Categories) > maxCategories {
		errs = append(errs, field.TooMany(spec.Child("categories"), len(p.Categories), maxCategories))
	}
	cats := map[string]bool{}
	for i, c := range p.Categories {
		path := spec.Child("categories").Index(i)
		switch {
		case c.Category == "" || len(c.Category) > 63:
			errs = append(errs, field.Invalid(path.Child("category"), c.Category, "must be 1 to 63 characters"))
		case cats[c.Category]:
			errs = append(errs, field.Duplicate(path.Child("category"), c.Category))
		case slices.Contains(locked, c.Category):
			errs = append(errs, field.Forbidden(path, fmt.Sprintf("category %q is locked by the namespace's policy: it cannot be muted", c.Category)))
		}
		cats[c.Category] = true
		checkChannels(path.Child("channels"), c.Channels)
	}
	if q := p.QuietHours; q != nil {
		path := spec.Child("quietHours")
		if !clockPattern.MatchString(q.Start) {
			errs = append(errs, field.Invalid(path.Child("start"), q.Start, `must be "HH:MM"`))
		}
		if !clockPattern.MatchString(q.End) {
			errs = append(errs, field.Invalid(path.Child("end"), q.End, `must be "HH:MM"`))
		}
		if q.Start == q.End {
			errs = append(errs, field.Invalid(path, q.End, "start and end must differ"))
		}
		checkChannels(path.Child("channels"), q.Channels)
	}
	return errs
}
