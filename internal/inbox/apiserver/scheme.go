package apiserver

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	inboxv1 "github.com/herald-dev/herald/api/inbox/v1alpha1"
	"github.com/herald-dev/herald/internal/inbox/registry/inboxitem"
)

// Scheme and Codecs serve the inbox API. They are separate from the
// client-side schemes: the server also registers the types under the
// internal version, which the generic API server converts through.
var (
	Scheme = runtime.NewScheme()
	Codecs = serializer.NewCodecFactory(Scheme)
)

func init() {
	utilruntime.Must(inboxv1.AddToScheme(Scheme))
	// The generic API server decodes request bodies into the "internal"
	// version of a group before handing them to storage. The inbox has one
	// version and no conversions, so the internal version is the same Go
	// type: a conversion between them is a no-op.
	internal := schema.GroupVersion{Group: inboxv1.GroupName, Version: runtime.APIVersionInternal}
	Scheme.AddKnownTypes(internal, &inboxv1.InboxItem{}, &inboxv1.InboxItemList{}, &inboxv1.InboxCounts{}, &inboxv1.BulkAction{}, &inboxv1.InboxPreferences{})
	utilruntime.Must(Scheme.AddFieldLabelConversionFunc(inboxv1.GroupVersion.WithKind("InboxItem"), inboxitem.FieldLabelConversion))

	// The generic API server reads list and get options in the empty
	// group's v1 and serves Status and discovery types unversioned.
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	unversioned := schema.GroupVersion{Group: "", Version: "v1"}
	Scheme.AddUnversionedTypes(unversioned,
		&metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{})
}
