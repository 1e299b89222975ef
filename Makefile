# Herald Makefile. `make help` lists the targets.

# Tools and test binaries are built from the Go module proxy into bin/.
LOCALBIN ?= $(shell pwd)/bin
K8S_BIN ?= $(LOCALBIN)/k8s
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
OPENAPI_GEN ?= $(LOCALBIN)/openapi-gen
MAILPIT ?= $(LOCALBIN)/mailpit
HELM ?= $(LOCALBIN)/helm
GINKGO ?= $(LOCALBIN)/ginkgo

CONTROLLER_TOOLS_VERSION ?= v0.21.0
MAILPIT_VERSION ?= v1.33.1
HELM_VERSION ?= v3.22.0

GO ?= go
# Tests run with the race detector off by default: on 2 cores the envtest
# suites are already CPU bound. `make test RACE=1` turns it on.
ifeq ($(RACE),1)
TEST_FLAGS += -race
endif

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and RBAC from markers (and copy them into the Helm chart).
	$(CONTROLLER_GEN) rbac:roleName=herald-controller crd:allowDangerousTypes=false paths="./api/notify/..." paths="./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	@# The Helm chart installs the same CRDs and ClusterRole, copied verbatim.
	rm -f dist/chart/files/crds/*.yaml
	cp config/crd/bases/*.yaml config/crd/policies/*.yaml dist/chart/files/crds/
	cp config/rbac/role.yaml dist/chart/files/rbac/controller-role.yaml
	mkdir -p dist/chart/files/prometheus && cp config/prometheus/alerts.yaml dist/chart/files/prometheus/alerts.yaml

.PHONY: generate
generate: controller-gen openapi-gen ## Generate DeepCopy methods and the inbox server's OpenAPI definitions.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."
	$(OPENAPI_GEN) --output-dir internal/inbox/openapi \
	  --output-pkg github.com/herald-dev/herald/internal/inbox/openapi \
	  --output-file zz_generated.openapi.go --output-model-name-file zz_generated.model_name.go \
	  --go-header-file hack/boilerplate.go.txt --report-filename /dev/null \
	  --readonly-pkg k8s.io/apimachinery/pkg/apis/meta/v1 --readonly-pkg k8s.io/apimachinery/pkg/runtime \
	  --readonly-pkg k8s.io/apimachinery/pkg/version \
	  ./api/inbox/v1alpha1 k8s.io/apimachinery/pkg/apis/meta/v1 k8s.io/apimachinery/pkg/runtime k8s.io/apimachinery/pkg/version

.PHONY: verify-generated
verify-generated: manifests generate ## Fail when committed generated files are stale.
	@git diff --exit-code -- api config dist/chart internal/inbox/openapi || { echo "generated files are stale: run 'make manifests generate' and commit the result" >&2; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- api config dist/chart internal/inbox/openapi); if [ -n "$$untracked" ]; then echo "generated files not committed: $$untracked" >&2; exit 1; fi

.PHONY: fmt
fmt: ## Run gofmt.
	gofmt -l -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet (also on the production build, -tags nodev).
	$(GO) vet ./...
	$(GO) vet -tags nodev ./cmd/...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted" >&2; exit 1; fi

##@ Test

.PHONY: test
test: envtest-bins vet verify-generated test-chart test-web test-alerts ## Vet, check generated files, lint the Helm chart, check the web component and the alert rules, run unit and envtest suites.
	KUBEBUILDER_ASSETS=$(K8S_BIN) HERALD_MAILPIT=$(MAILPIT) HERALD_HELM=$(HELM) $(GO) test $(TEST_FLAGS) -count=1 -timeout 30m ./...

# The chart's value combinations that change what it renders; test/manifests
# renders them again and dry-runs them against kube-apiserver.
CHART_VALUE_SETS = "" "certManager.enabled=true,metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true,receiver.ingress.enabled=true,receiver.ingress.host=hooks.example.com,receiver.ingress.tlsSecretName=hooks-tls" "inbox.enabled=false,crd.enable=false,receiver.enabled=false" "controller.shards[0].name=a,controller.shards[1].name=b,controller.shards[1].replicas=1,controller.shards[1].extraArgs={--workers=20},metrics.serviceMonitor.enabled=true"
.PHONY: test-chart
test-chart: $(HELM) ## Lint the Helm chart (dist/chart) and render it with each value set.
	@for set in $(CHART_VALUE_SETS); do \
	  echo "helm lint dist/chart --strict $${set:+--set $$set}"; \
	  $(HELM) lint dist/chart --strict $${set:+--set "$$set"} >/dev/null || exit 1; \
	  $(HELM) template herald dist/chart --namespace herald-system $${set:+--set "$$set"} >/dev/null || exit 1; \
	done

# The <herald-inbox> component is plain JavaScript with no build step: this
# checks its syntax and runs its unit tests with Node's built-in runner (no
# packages). test-e2e drives it in Chromium.
NODE ?= node
.PHONY: test-web
test-web: ## Check and unit-test the <herald-inbox> web component (needs Node.js 20+).
	@if command -v $(NODE) >/dev/null 2>&1; then \
	  $(NODE) --check web/herald-inbox/herald-inbox.js && $(NODE) --test web/herald-inbox/; \
	else echo "test-web: $(NODE) not found; the component is still driven by make test-e2e" >&2; fi

# The alert rules and the dashboard are checked with Prometheus's own
# parsers, in a module of their own: Prometheus stays out of Herald's
# go.mod and binaries.
.PHONY: test-alerts
test-alerts: ## Parse config/prometheus alert rules and check every query of them and of the dashboard uses documented metrics.
	cd hack/tools/promrules && $(GO) test -count=1 ./...

.PHONY: test-unit
test-unit: ## Run only the tests that need no control plane.
	$(GO) test $(TEST_FLAGS) -short ./...

##@ Build

.PHONY: build
build: ## Build the herald binary and the kubectl plugin kubectl-herald into bin/ (herald with `herald dev`).
	$(GO) build -o $(LOCALBIN)/herald ./cmd/herald
	$(GO) build -o $(LOCALBIN)/kubectl-herald ./cmd/kubectl-herald

# The production build: static (CGO_ENABLED=0), and -tags nodev leaves
# `herald dev` and everything under internal/dev out of the binary;
# cmd/herald/imports_test.go checks it. The image is built from it.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PROD_BUILD = CGO_ENABLED=0 $(GO) build -tags nodev -trimpath -ldflags "-s -w -X main.version=$(VERSION)"
.PHONY: build-prod
build-prod: ## Build the production herald binary (controller and apiserver only, no dev code) into bin/herald-prod.
	$(PROD_BUILD) -o $(LOCALBIN)/herald-prod ./cmd/herald

# The image is FROM scratch and holds only the binary built here, so it
# needs no registry. The engine is podman or docker, whichever works here.
IMAGE ?= herald:$(VERSION)
IMAGE_CONTEXT ?= .image
CONTAINER_TOOL ?= $(shell for t in podman docker; do command -v $$t >/dev/null && $$t info >/dev/null 2>&1 && { echo $$t; break; }; done)
.PHONY: image
image: ## Build the container image $(IMAGE) (FROM scratch, the static nodev binary) with podman or docker.
	@test -n "$(CONTAINER_TOOL)" || { echo "make image needs podman or docker (apt-get install podman)" >&2; exit 1; }
	@mkdir -p $(IMAGE_CONTEXT)
	GOOS=linux $(PROD_BUILD) -o $(IMAGE_CONTEXT)/herald ./cmd/herald
	$(CONTAINER_TOOL) build $(IMAGE_BUILD_FLAGS) -f Containerfile -t $(IMAGE) $(IMAGE_CONTEXT)

.PHONY: test-image
test-image: image ## Build the image and check it: user, entrypoint, no shell, size; run `herald version` in it where the kernel allows.
	HERALD_IMAGE=$(IMAGE) HERALD_CONTAINER_TOOL=$(CONTAINER_TOOL) $(GO) test -count=1 -v ./test/image/

##@ Tools and test binaries

.PHONY: envtest-bins
envtest-bins: $(K8S_BIN)/kube-apiserver $(K8S_BIN)/etcd $(MAILPIT) ## Build kube-apiserver, etcd and Mailpit for tests (once).

# kube-apiserver is built from k8s.io/kubernetes by its own module so that its
# large dependency graph stays out of Herald's go.mod.
$(K8S_BIN)/kube-apiserver:
	@mkdir -p $(K8S_BIN)
	@echo "building kube-apiserver (several minutes the first time)"
	cd hack/tools/kube-apiserver && $(GO) build -o $(K8S_BIN)/kube-apiserver .

$(K8S_BIN)/etcd:
	@mkdir -p $(K8S_BIN)
	cd hack/tools/etcd && $(GO) build -o $(K8S_BIN)/etcd .

$(MAILPIT):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) $(GO) install github.com/axllent/mailpit@$(MAILPIT_VERSION)

# helm, for the chart's lint and rendering, built from the Go module proxy
# (a few minutes once on 2 cores).
.PHONY: helm
helm: $(HELM) ## Install helm into bin/.
$(HELM):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

.PHONY: openapi-gen
openapi-gen: $(OPENAPI_GEN) ## Install openapi-gen at the kube-openapi version in go.mod.
$(OPENAPI_GEN):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) $(GO) install k8s.io/kube-openapi/cmd/openapi-gen@$$($(GO) list -m -f '{{.Version}}' k8s.io/kube-openapi)

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen.
$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

##@ Benchmarks

# No client-side limit: the bench measures what the control plane allows
# (the bench's admin user is exempt from priority and fairness).
BENCH_FLAGS ?= --kube-api-qps=-1 --notification-workers=16 --workers=16
.PHONY: bench
bench: envtest-bins build ## Measure throughput and latency against the control plane's own bound (writes bench/results/).
	KUBEBUILDER_ASSETS=$(K8S_BIN) HERALD_BENCH_FLAGS="$(BENCH_FLAGS)" $(GO) test -tags bench -run TestBench -count=1 -timeout 90m -v ./bench/

# The regression guard: small enough to run before and after a change in one
# sitting (under two minutes on two cores), large enough that the delivery
# cost settles. Its reports are named *-quick.md.
QUICK_BENCH_ENV ?= HERALD_BENCH_N=300 HERALD_BENCH_FANOUT=1000 HERALD_BENCH_BOUND_N=500 HERALD_BENCH_RUNS=inapp,webhook,fanout HERALD_BENCH_LABEL=quick
.PHONY: bench-quick
bench-quick: envtest-bins build ## A two-minute bench (300 in-app, 300 webhook, a 1,000 fan-out) that prints each run's delivery cost.
	KUBEBUILDER_ASSETS=$(K8S_BIN) HERALD_BENCH_FLAGS="$(BENCH_FLAGS)" $(QUICK_BENCH_ENV) $(GO) test -tags bench -run TestBench -count=1 -timeout 20m -v ./bench/

.PHONY: test-faults
test-faults: envtest-bins build ## Kill the controller, stop the API server, fail the receivers: nothing may be lost.
	KUBEBUILDER_ASSETS=$(K8S_BIN) HERALD_MAILPIT=$(MAILPIT) $(GO) test -tags faults -count=1 -timeout 30m -v ./test/faults/

##@ Local development and end-to-end tests

DEV_FLAGS ?=
.PHONY: dev
dev: envtest-bins build ## Run Herald locally: control plane, controllers, inbox, sinks and demo data (state in .herald-dev; Ctrl-C stops). DEV_FLAGS="--reset" starts afresh.
	KUBEBUILDER_ASSETS=$(K8S_BIN) HERALD_MAILPIT=$(MAILPIT) $(LOCALBIN)/herald dev $(DEV_FLAGS)

.PHONY: test-e2e
test-e2e: envtest-bins ## Drive the inbox page of `herald dev` in headless Chromium (needs Debian's chromium).
	KUBEBUILDER_ASSETS=$(K8S_BIN) HERALD_MAILPIT=$(MAILPIT) $(GO) test -tags e2e -count=1 -timeout 15m -v ./test/e2e/

##@ Deployment

KUBECTL ?= kubectl
.PHONY: deploy
deploy: ## Install Herald into the current kubeconfig's cluster: CRDs, RBAC, controller and inbox in herald-system (set the image in config/default/kustomization.yaml).
	$(KUBECTL) apply -k config/default

.PHONY: undeploy
undeploy: ## Remove what `make deploy` installed, CRDs (and so every Herald object) included.
	$(KUBECTL) delete -k config/default --ignore-not-found
