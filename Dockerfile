# The herald binary (controller, apiserver) in a distroless image that runs
# as non-root (uid 65532, as config/manager and config/apiserver expect).
# It is built with -tags nodev, as `make build-prod` builds it: `herald dev`,
# its fake sinks and the test helpers (internal/dev) are not in the image.
#   docker build -t registry.example.com/herald:v0.1.0 .
# then set the image in config/default/kustomization.yaml and `make deploy`.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
COPY pkg/ pkg/
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -tags nodev -trimpath -ldflags="-s -w" -o /out/herald ./cmd/herald

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/herald /herald
USER 65532:65532
ENTRYPOINT ["/herald"]
