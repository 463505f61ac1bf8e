# syntax=docker/dockerfile:1
# Multi-stage build of the dwnsync operator: a static CGO_ENABLED=0 binary on a distroless,
# non-root base. The go build line is the Makefile's `build` target (internal/shiptest checks
# that the two stay in step and runs the line without Docker). Pass the version and the commit
# (the build context has no .git):
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg COMMIT=$(git rev-parse --short=12 HEAD) -t IMAGE .
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV GOTOOLCHAIN=local CGO_ENABLED=0
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
ARG VERSION=dev
ARG COMMIT=
RUN go build -trimpath -ldflags "-s -w -X github.com/dwnsync/dwnsync/internal/version.Version=${VERSION} -X github.com/dwnsync/dwnsync/internal/version.commit=${COMMIT}" -o /out/dwnsync ./cmd/dwnsync

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dwnsync /dwnsync
USER 65532:65532
# The bbolt state file lives on the PVC mounted here (see the Helm chart).
VOLUME ["/var/lib/dwnsync"]
ENTRYPOINT ["/dwnsync"]
CMD ["operator", "--state-dir=/var/lib/dwnsync"]
