package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the aggregated API group of the inbox.
const GroupName = "inbox.herald.dev"

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

	// SchemeBuilder registers the inbox types.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the inbox types to a scheme, for clients.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Resource returns the GroupResource of resource in this group.
func Resource(resource string) schema.GroupResource {
	return GroupVersion.WithResource(resource).GroupResource()
}

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &InboxItem{}, &InboxItemList{}, &InboxCounts{}, &BulkAction{}, &InboxPreferences{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
