# syntax=docker/dockerfile:1

# FluxionDB image: one static Go binary on distroless "static", served as a
# non-root user. `make build` builds it; `make test` (deploy/check) runs the
# builder stage's `go build` line below verbatim on the host, lints this file
# with BuildKit's own parser and linter, and checks the result, because no
# Docker engine runs on the development and CI machines.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first: a source edit does not refetch them.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# VERSION is stamped into main.version; `make build` passes `git describe`.
ARG VERSION=dev
ENV CGO_ENABLED=0
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/fluxiondb ./cmd/fluxiondb && \
    mkdir -p /out/data

# static-debian13 holds CA certificates, tzdata and /etc/passwd with the
# "nonroot" user (65532) and nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian13
WORKDIR /app
COPY --from=build /out/fluxiondb /app/fluxiondb
# An empty data directory owned by the runtime user, so that the anonymous
# volume below and any new named volume start out writable by it.
COPY --from=build --chown=65532:65532 /out/data /app/data
# Listen on every interface of the container; the server reads FLUXIONDB_*.
ENV FLUXIONDB_HOST=0.0.0.0
# The server runs as 65532:65532. It starts as root only to make that possible
# with the README's `docker run -v $(pwd)/tmp_data:/app/data …`, where Docker
# creates tmp_data owned by root: first thing, it hands the --data folder to
# FLUXIONDB_RUN_AS and switches to that user for good (the model of the
# official PostgreSQL image). Started as another user (`docker run --user`,
# Kubernetes' runAsUser, as the Helm chart does), it changes nothing.
ENV FLUXIONDB_RUN_AS=65532:65532
USER 0:0
VOLUME ["/app/data"]
EXPOSE 8080
# The binary checks itself: GET /healthz on 127.0.0.1:${FLUXIONDB_PORT:-8080}.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/app/fluxiondb", "healthcheck"]
ENTRYPOINT ["/app/fluxiondb"]
