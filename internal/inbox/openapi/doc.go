// Package openapi holds the OpenAPI definitions the inbox server publishes
// (for `kubectl explain` and server-side field validation by clients): the
// inbox types and the apimachinery types they refer to. `make generate`
// produces them with kube-openapi's openapi-gen, at the kube-openapi
// version in go.mod; the model name file lands in api/inbox/v1alpha1.
package openapi
