// Package check verifies the deployment artefacts that cannot be exercised on
// the development and CI machines, where no Docker engine and no Kubernetes
// cluster run. It holds only tests; `make test` runs them.
//
// The Dockerfile is parsed and linted with BuildKit's own Dockerfile
// frontend (the rules of `docker build --check`, with base images resolved
// offline), its policy is asserted (non-root user, volume, port, exec-form
// entrypoint and healthcheck), and its builder stage is replayed on the host:
// the build context is assembled through .dockerignore exactly as Docker
// sends it, and the stage's RUN lines run verbatim with the stage's ENV and
// ARG values. The resulting binary is checked to be static, stripped, built
// with -trimpath and stamped with the version, and it is started the way the
// image starts it to prove that the HEALTHCHECK command works.
//
// The Helm chart is linted and rendered with Helm's Go packages for several
// sets of values; every rendered manifest is decoded strictly into its
// k8s.io/api type, so a misspelt or misplaced field fails as the API server
// would reject it, and the facts an operator relies on are asserted. The
// container spec the chart renders is also run against the real binary.
//
// This is a separate Go module so that Helm, Kubernetes and BuildKit never
// become dependencies of the server module.
package check
