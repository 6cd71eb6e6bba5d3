#!/bin/sh
# bench_record.sh - does failure recording cost the success path anything?
# Runs bench/bench_record under `cebox run` with recording off (no --out)
# and on (--out DIR), alternating, and prints the best of RUNS runs of each:
# ns per malloc or free on a workload that never fails, and, for scale, ns
# per failed malloc (the path that records a stack when --out is set).
#
#   bench/bench_record.sh [RUNS] [OPS]     (default 7 runs, 2 000 000 ops;
#                                           run from the build tree)
set -eu
RUNS=${1:-7}
OPS=${2:-2000000}
HERE=$(cd "$(dirname "$0")" && pwd)
B=${BUILDDIR:-$(pwd)}
CEBOX=${CEBOX:-$B/cebox}
PROG=${BENCH_RECORD:-$B/bench/bench_record}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# one MODE OPS on|off: ns per operation of one run.
one() {
    if [ "$3" = on ]; then
        rm -rf "$TMP/out"
        "$CEBOX" run --quiet --out "$TMP/out" "$PROG" "$2" "$1"
    else
        "$CEBOX" run --quiet "$PROG" "$2" "$1"
    fi
}

best() { sort -n | head -1; }

for i in $(seq 1 "$RUNS"); do
    order="off on"
    [ $((i % 2)) -eq 0 ] && order="on off" # neither goes first every time
    for rec in $order; do
        one success "$OPS" "$rec" >> "$TMP/success.$rec"
        one fail $((OPS / 100)) "$rec" >> "$TMP/fail.$rec"
    done
done
so=$(best < "$TMP/success.off") sn=$(best < "$TMP/success.on")
fo=$(best < "$TMP/fail.off") fn=$(best < "$TMP/fail.on")
echo "| path | recording off (ns/op) | recording on, --out (ns/op) | on / off |"
echo "|---|---:|---:|---:|"
awk -v o="$so" -v n="$sn" 'BEGIN { printf "| success: malloc/free, 1 000 live blocks | %.1f | %.1f | %.3f |\n", o, n, n / o }'
awk -v o="$fo" -v n="$fn" 'BEGIN { printf "| failure: malloc larger than the slot | %.1f | %.1f | %.1f |\n", o, n, n / o }'
echo
echo "best of $RUNS alternating runs; $OPS operations per success run, $((OPS / 100)) per failure run"
