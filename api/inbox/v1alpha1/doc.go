// Package v1alpha1 contains the inbox.herald.dev/v1alpha1 API: the per-user
// inbox that Herald's aggregated API server serves over in-app
// ChannelDeliveries. Nothing here is stored: every InboxItem is a view of a
// ChannelDelivery, computed for the caller.
//
// The OpenAPI model names (zz_generated.model_name.go) and the server's
// OpenAPI definitions (internal/inbox/openapi) are generated with
// kube-openapi's openapi-gen; see internal/inbox/openapi/doc.go.
//
// +kubebuilder:object:generate=true
// +k8s:openapi-gen=true
// +k8s:openapi-model-package=dev.herald.inbox.v1alpha1
// +groupName=inbox.herald.dev
package v1alpha1
