#!/usr/bin/env bash
# test.sh is `make test`: every check CI runs, in order, each timed, with a
# closing summary. It keeps going after a failed step so one run shows every
# problem, and exits non-zero if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."

GOTEST_FLAGS=${GOTEST_FLAGS:--race -count=1 -timeout=10m}

names=() results=() times=()
failed=0

step() {
	local name=$1; shift
	echo
	echo "==> ${name}"
	local start=$SECONDS
	if "$@"; then
		results+=(ok)
	else
		results+=(FAIL)
		failed=$((failed + 1))
	fi
	names+=("$name")
	times+=($((SECONDS - start)))
}

gofmt_check() {
	local files
	files=$(git ls-files --cached --others --exclude-standard -- '*.go' | xargs -r gofmt -l)
	if [ -n "$files" ]; then
		echo "gofmt needed (run gofmt -w):"
		echo "$files"
		return 1
	fi
}

in_dir() { (cd "$1" && shift && "$@"); }

step "gofmt" gofmt_check
step "go vet (server)" go vet ./...
step "go vet (clients/go)" in_dir clients/go go vet ./...
step "go vet (deploy/check)" in_dir deploy/check go vet ./...
# staticcheck at the Makefile's pinned version, through `go run` (the module proxy): ~40 s on
# a fresh machine once go vet has built the packages, seconds with a warm build cache. It is
# what `make lint` adds to vet; a finding of it slipped past CI once while it ran only by hand.
step "staticcheck" make -s staticcheck
# shellcheck disable=SC2086
step "go test -race (server)" go test $GOTEST_FLAGS ./...
# Allocation counts need a build without the race detector (it makes sync.Pool drop items).
step "go test, no -race (allocation tests)" go test -count=1 -run 'Alloc' ./internal/db
# shellcheck disable=SC2086
step "go test -race (clients/go)" in_dir clients/go go test $GOTEST_FLAGS ./...
step "npm ci (clients/node)" in_dir clients/node npm ci --no-audit --no-fund
step "npm test (clients/node)" in_dir clients/node npm test
# Renders and strictly decodes the Helm chart, lints and replays the
# Dockerfile's build; no -race: it tests manifests, not concurrency.
step "deploy checks (deploy/check)" in_dir deploy/check go test -count=1 -timeout=10m ./...

echo
echo "==> summary"
for i in "${!names[@]}"; do
	printf '  %-4s %4ss  %s\n' "${results[$i]}" "${times[$i]}" "${names[$i]}"
done
echo "  total ${SECONDS}s"
echo "steps: $(( ${#names[@]} - failed )) passed, ${failed} failed"
[ "$failed" -eq 0 ]
