// Package openapi holds the OpenAPI definitions the inbox server publishes
// (for `kubectl explain` and server-side field validation by clients): the
// inbox types and the apimachinery types they refer to. It is generated
// with kube-openapi's openapi-gen, at the kube-openapi version in go.mod:
//
//	go install k8s.io/kube-openapi/cmd/openapi-gen@<version in go.mod>
//	openapi-gen --output-dir internal/inbox/openapi \
//	  --output-pkg github.com/herald-dev/herald/internal/inbox/openapi \
//	  --output-file zz_generated.openapi.go \
//	  --output-model-name-file zz_generated.model_name.go \
//	  --go-header-file hack/boilerplate.go.txt \
//	  --readonly-pkg k8s.io/apimachinery/pkg/apis/meta/v1 \
//	  --readonly-pkg k8s.io/apimachinery/pkg/runtime \
//	  --readonly-pkg k8s.io/apimachinery/pkg/version \
//	  --report-filename /dev/null \
//	  ./api/inbox/v1alpha1 k8s.io/apimachinery/pkg/apis/meta/v1 \
//	  k8s.io/apimachinery/pkg/runtime k8s.io/apimachinery/pkg/version
//
// The model name file lands in api/inbox/v1alpha1.
package openapi
