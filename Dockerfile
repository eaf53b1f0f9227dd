# syntax=docker/dockerfile:1
# One image recipe for every Go program of the workspace. SERVICE is the package's path from
# the repository root, with or without a leading ./ :
#
#   docker build --build-arg SERVICE=producer-api -t export-platform/producer-api .
#   docker build --build-arg SERVICE=./dev/cmd/seed -t export-platform/seed .
#
# The binary is static (CGO_ENABLED=0) and runs on distroless/static as the nonroot user:
# no shell, no package manager, only CA certificates and tzdata (the scheduler needs zones).

# Matches the `go` line of go.work: the golang image pins GOTOOLCHAIN=local, so an older
# image would refuse to build rather than download a newer toolchain.
ARG GO_VERSION=1.27.3

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath

# Module files first: the download layer stays cached until a go.mod or go.sum changes.
# go.work names every module, so each one's go.mod must be present even if unused here.
COPY go.work go.work.sum ./
COPY pkg/go.mod pkg/go.sum pkg/
COPY producer-api/go.mod producer-api/go.sum producer-api/
COPY exporter/go.mod exporter/go.sum exporter/
COPY scheduler/go.mod scheduler/go.sum scheduler/
COPY progress-hub/go.mod progress-hub/go.sum progress-hub/
COPY audit-sink/go.mod audit-sink/go.sum audit-sink/
COPY e2e/go.mod e2e/go.sum e2e/
COPY dev/go.mod dev/go.sum dev/
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .

# Declared late so that changing it reuses every layer above.
ARG SERVICE
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    if [ -z "${SERVICE:-}" ]; then \
      echo 'build arg SERVICE is required, e.g. --build-arg SERVICE=producer-api' >&2; exit 1; \
    fi; \
    pkg="./${SERVICE#./}"; pkg="${pkg%/}"; \
    GOOS="${TARGETOS:-linux}" GOARCH="${TARGETARCH:-amd64}" \
      go build -ldflags='-s -w' -o /out/app "$pkg"

FROM gcr.io/distroless/static-debian12:nonroot
ARG SERVICE
LABEL org.opencontainers.image.title="export-platform ${SERVICE}" \
      org.opencontainers.image.description="Export Platform: ${SERVICE}"
COPY --from=build /out/app /app
# 65532 is distroless's nonroot; numeric so Kubernetes runAsNonRoot can verify it.
USER 65532:65532
ENTRYPOINT ["/app"]
