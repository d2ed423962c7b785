#!/usr/bin/env bash
# bench.sh runs the standard FluxionDB load set (what `make bench` calls):
# it builds the server and fluxbench, starts a fresh server per run on
# 127.0.0.1:0, and prints each figure with the tool's own ceiling beside it.
# Go micro-benchmarks are separate: go test -run '^$' -bench . ./...
#
# Environment: BENCH_OUT=DIR keeps the logs and JSON results there (default: a
# temporary directory, printed at the end); BENCH_SCALE=N divides the record
# and request counts by N for a quick smoke run.
set -uo pipefail
cd "$(dirname "$0")/.."

out=${BENCH_OUT:-$(mktemp -d -t fluxbench.XXXXXX)}
scale=${BENCH_SCALE:-1}
mkdir -p "$out/bin"
echo "building into $out/bin"
go build -o "$out/bin/fluxiondb" ./cmd/fluxiondb || exit 1
go build -o "$out/bin/fluxbench" ./cmd/fluxbench || exit 1
fb="$out/bin/fluxbench"
srv="$out/bin/fluxiondb"

n() { echo $(($1 / scale)); }

summaries=()
failed=0

# run NAME ARGS... runs one scenario; the table goes to the terminal and to
# $out/NAME.txt, the JSON result to $out/NAME.json.
run() {
	local name=$1 scenario=$2
	shift 2
	echo
	echo "== $name"
	echo "\$ fluxbench $scenario $*"
	# -q and -json go before the scenario's flags: anything after -- is the server's.
	if "$fb" "$scenario" -q -json "$@" >"$out/$name.json" 2>"$out/$name.txt"; then
		grep -v '^summary:' "$out/$name.txt"
		summaries+=("$name: $(grep '^summary:' "$out/$name.txt" | sed 's/^summary: //')")
		return 0
	fi
	cat "$out/$name.txt"
	return 1
}

run ingest-mem ingest -server "$srv" -records "$(n 5000000)" -batch 1000 -conns 2 -inflight 4 -payload 50 -docs 10000 -ceiling ||
	failed=1

# Persistence: only when the server accepts --data (detected by trying).
data=$(mktemp -d -p "$out" data.XXXXXX)
if run ingest-fsync ingest -server "$srv" -records "$(n 3000000)" -batch 1000 -conns 2 -inflight 4 -payload 50 -docs 10000 \
	-- --data="$data" --fsync=always; then
	:
elif grep -q 'server exited before listening' "$out/ingest-fsync.txt"; then
	summaries+=("ingest-fsync: skipped, the server refused --data=DIR --fsync=always")
else
	failed=1
fi
rm -rf "$data"

run qry qry -server "$srv" -docs 10000 -requests "$(n 300)" -conns 1 -inflight 1 -ceiling || failed=1
run qdoc qdoc -server "$srv" -docs 1000 -depth 1000 -k 100 -conns 2 -inflight 4 -requests "$(n 150000)" -ceiling || failed=1
run qdoc-serial qdoc -server "$srv" -docs 1000 -depth 1000 -k 100 -conns 1 -inflight 1 -requests "$(n 20000)" -ceiling || failed=1
run mixed mixed -server "$srv" -docs 1000 -depth 1000 -writers 1 -conns 1 -inflight 4 -duration 5s || failed=1
# Live subscriptions (issue 8): 100 subscribers at the target of 200k events/s
# (2000 records/s × 100), then the writers flat out.
run fanout fanout -server "$srv" -conns 100 -writers 1 -rate 2000 -batch 10 -payload 50 -docs 1000 -duration 10s -ceiling || failed=1
run fanout-flat fanout -server "$srv" -conns 100 -writers 2 -rate 0 -batch 10 -payload 50 -docs 1000 -duration 5s || failed=1
run memory ingest -server "$srv" -records "$(n 10000000)" -batch 1000 -conns 2 -inflight 4 -payload 50 -docs 10000 -settle 2s || failed=1

echo
echo "== summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(go version | cut -d' ' -f3), $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
for s in "${summaries[@]}"; do
	echo "$s"
done
echo "logs and JSON results: $out"
exit $failed
