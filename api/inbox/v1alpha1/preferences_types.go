package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PreferencesName is the only name of an InboxPreferences: the caller's
// own, in the namespace of the request. Nobody can name anyone else's.
const PreferencesName = "me"

// LockedCategoriesAnnotation on a Namespace lists, comma-separated, the
// categories its people cannot mute through the inbox (e.g. "security").
const LockedCategoriesAnnotation = "inbox.herald.dev/locked-categories"

// InboxCategoryPreference chooses the channels of one category.
type InboxCategoryPreference struct {
	// category the preference applies to.
	Category string `json:"category"`
	// channels to receive this category on (inApp, email, whatsapp,
	// webhook); an empty list mutes the category. critical and approval
	// notifications still arrive.
	// +listType=set
	Channels []string `json:"channels"`
}

// InboxQuietHours holds deliveries that fall inside a daily window in the
// caller's timezone.
type InboxQuietHours struct {
	// start of the window, "HH:MM".
	Start string `json:"start"`
	// end of the window, "HH:MM"; it may wrap past midnight.
	End string `json:"end"`
	// channels the window applies to; by default all but inApp.
	// +listType=set
	// +optional
	Channels []string `json:"channels,omitempty"`
	// allowCritical lets critical and approval notifications through.
	// +optional
	AllowCritical bool `json:"allowCritical,omitempty"`
}

// InboxPreferencesSpec is what the caller chooses.
type InboxPreferencesSpec struct {
	// timezone is an IANA zone name, e.g. "Europe/Berlin"; empty is UTC.
	// +optional
	Timezone string `json:"timezone,omitempty"`
	// optOut lists channels the caller does not want at all.
	// +listType=set
	// +optional
	OptOut []string `json:"optOut,omitempty"`
	// categories choose channels per category.
	// +listType=map
	// +listMapKey=category
	// +optional
	Categories []InboxCategoryPreference `json:"categories,omitempty"`
	// +optional
	QuietHours *InboxQuietHours `json:"quietHours,omitempty"`
}

// InboxPreferencesStatus says where the preferences live and what the
// namespace does not let the caller change.
type InboxPreferencesStatus struct {
	// recipients are the caller's Recipients in the namespace (those whose
	// spec.username is the caller); a write goes to each.
	// +listType=set
	// +optional
	Recipients []string `json:"recipients,omitempty"`
	// lockedCategories cannot be muted (namespace policy).
	// +listType=set
	// +optional
	LockedCategories []string `json:"lockedCategories,omitempty"`
}

// InboxPreferences are the caller's own notification preferences in one
// namespace: a view of the preferences and timezone of the caller's
// Recipients there, which the inbox server writes on the caller's behalf.
// +kubebuilder:object:root=true
type InboxPreferences struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec InboxPreferencesSpec `json:"spec"`
	// +optional
	Status InboxPreferencesStatus `json:"status,omitempty"`
}
