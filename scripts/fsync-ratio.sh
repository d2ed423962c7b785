#!/usr/bin/env bash
# fsync-ratio.sh measures the #3 persistence targets: the ingest rate of each --fsync
# policy as a fraction of the in-memory rate, on the same build, in the same window.
#
# This VM's speed drifts by ±30% within minutes, so single runs compare nothing. Each
# round runs every mode once, on a fresh server (and a fresh data folder); the order of
# the modes reverses every other round so that drift within a round favours none. A mode's
# figure is the median of its per-round ratios to the in-memory run of the same round.
#
#   scripts/fsync-ratio.sh [ROUNDS] [RECORDS] [MODE...]      (default: 8 4000000 always interval)
#
# ROUNDS=8 with 4M records takes about 4 minutes (three modes). Run it with nothing else busy on the
# machine. BENCH_OUT=DIR keeps the binaries, the data folders' parent and each run's JSON.
# OTHER=PATH (a fluxiondb binary, e.g. an earlier commit's) adds every --data mode run on that
# binary too, as MODE@other, in the same rounds: a before/after comparison that drift hits alike.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-8}
records=${2:-4000000}
modes=(mem always interval)
if [ $# -gt 2 ]; then modes=(mem "${@:3}"); fi
if [ -n "${OTHER:-}" ]; then
	for m in "${modes[@]:1}"; do modes+=("$m@other"); done
fi

out=${BENCH_OUT:-$(mktemp -d -t fsyncratio.XXXXXX)}
mkdir -p "$out/bin"
go build -o "$out/bin/fluxiondb" ./cmd/fluxiondb
go build -o "$out/bin/fluxbench" ./cmd/fluxbench
echo "build $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $rounds rounds of $records records, results in $out"

results="$out/rates.txt" # round mode records/s
: >"$results"
for ((r = 1; r <= rounds; r++)); do
	order=("${modes[@]}")
	if ((r % 2 == 0)); then
		order=()
		for ((i = ${#modes[@]} - 1; i >= 0; i--)); do order+=("${modes[i]}"); done
	fi
	for mode in "${order[@]}"; do
		args=()
		data=""
		server="$out/bin/fluxiondb"
		if [ "$mode" != mem ]; then
			data=$(mktemp -d -p "$out" data.XXXXXX)
			args=(-- --data="$data" --fsync="${mode%@other}")
			if [ "${mode%@other}" != "$mode" ]; then server=$OTHER; fi
		fi
		json="$out/r$r-$mode.json"
		"$out/bin/fluxbench" ingest -server "$server" -records "$records" -batch 1000 \
			-conns 2 -inflight 4 -payload 50 -docs 10000 -q -json "${args[@]}" >"$json" 2>"${json%.json}.txt"
		rate=$(grep -o '"records_per_s": *[0-9.]*' "$json" | head -1 | grep -o '[0-9.]*$' | cut -d. -f1)
		echo "$r $mode $rate" | tee -a "$results"
		if [ -n "$data" ]; then rm -rf "$data"; fi
		sync
		sleep 2
	done
done

# Per-round ratios to the same round's in-memory rate, then each mode's median.
awk '
	{ rate[$1, $2] = $3; rounds[$1] = 1; if ($2 != "mem") modes[$2] = 1 }
	END {
		for (m in modes) {
			n = 0
			line = ""
			for (r in rounds) if ((r, "mem") in rate && (r, m) in rate) {
				v[++n] = rate[r, m] / rate[r, "mem"]
			}
			# insertion sort: n is small
			for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
			med = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
			for (i = 1; i <= n; i++) line = line sprintf(" %.2f", v[i])
			printf "%-9s median %.3f of in-memory over %d rounds (sorted:%s)\n", m, med, n, line
		}
	}' "$results"
