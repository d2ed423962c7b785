#!/usr/bin/env bash
# cpu-split.sh shows where the machine's time goes during an ingest run: the server's CPU,
# the tool's, and what the machine left idle (and idle with I/O pending, "iowait"), in
# clock ticks (1/100 s) over three seconds in the middle of a 6 s run. It answers what a
# rate alone cannot: whether a slower mode is busier (more CPU per record) or waits more.
#
#   scripts/cpu-split.sh [MODE...]        (default: mem interval; MODE = mem | always | interval | never)
#
# SERVER=path uses a server binary already built (default: build ./cmd/fluxiondb). Two cores
# give 600 ticks in the window. Run it with nothing else busy on the machine, and compare
# modes only within one invocation: this VM's speed drifts by ±30% within minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

modes=("$@")
if [ ${#modes[@]} -eq 0 ]; then modes=(mem interval); fi
out=$(mktemp -d -t cpusplit.XXXXXX)
trap 'rm -rf "$out"' EXIT
server=${SERVER:-}
if [ -z "$server" ]; then
	server="$out/fluxiondb"
	go build -o "$server" ./cmd/fluxiondb
fi
go build -o "$out/fluxbench" ./cmd/fluxbench

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # utime + stime of a process
machine() { head -1 /proc/stat; }                      # cpu user nice system idle iowait irq softirq steal …

for mode in "${modes[@]}"; do
	args=()
	if [ "$mode" != mem ]; then
		data=$(mktemp -d -p "$out" data.XXXXXX)
		args=(-- --data="$data" --fsync="$mode")
	fi
	"$out/fluxbench" ingest -server "$server" -duration 6s -batch 1000 -conns 2 -inflight 4 \
		-payload 50 -docs 10000 -q -json "${args[@]}" >"$out/run.json" 2>/dev/null &
	tool=$!
	sleep 2
	srv=$(pgrep -n -P "$tool")
	read -r _ u1 n1 s1 i1 w1 q1 sq1 _ < <(machine)
	a1=$(ticks "$srv")
	b1=$(ticks "$tool")
	sleep 3
	read -r _ u2 n2 s2 i2 w2 q2 sq2 _ < <(machine)
	a2=$(ticks "$srv")
	b2=$(ticks "$tool")
	wait "$tool"
	rate=$(grep -o '"records_per_s": *[0-9.]*' "$out/run.json" | head -1 | grep -o '[0-9.]*$' | cut -d. -f1)
	printf '%-9s %9s rec/s  server %3d  tool %3d  idle %3d  iowait %3d  (user %d, system %d, softirq %d)\n' \
		"$mode" "$rate" $((a2 - a1)) $((b2 - b1)) $((i2 - i1)) $((w2 - w1)) $((u2 + n2 - u1 - n1)) $((s2 - s1)) $((sq2 - sq1))
	rm -rf "${data:-/nonexistent}"
	sync
	sleep 1
done
