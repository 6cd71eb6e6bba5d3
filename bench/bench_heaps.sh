#!/bin/sh
# bench_heaps.sh - the three CE heaps side by side (issue: CE 3.0, CE 5,
# CE 6.0 profiles), against glibc malloc, on bench_heap's mixed workload at
# 1 000, 10 000 and 100 000 live blocks: ns per operation (bench_heap's
# best of 5) and instructions per steady-state operation (callgrind,
# counting HeapAlloc and HeapFree only: the difference between a run of
# 3*K and one of K operation pairs, so the fill is left out).  Not a test.
#
#   bench/bench_heaps.sh [PAIRS [K]]   (defaults 100000 timed pairs, K=1000)
#   BENCH_BIN=dir-of-bench_heap        (make bench-heaps sets it)
set -eu
PAIRS=${1:-100000}
K=${2:-1000}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BENCH_BIN:-$HERE}/bench_heap
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# ns/op of one allocator at one size: the first column after the size.
ns() { # PROFILE LIVE WHICH
    BENCH_PROFILE=$1 BENCH_LIVE=$2 "$BIN" "$PAIRS" "$3" | awk -F'|' -v w="$3" '
        /^\| [0-9]/ { print (w == "glibc") ? $5 : $3; exit }' | tr -d ' '
}
# Instructions in HeapAlloc/HeapFree for n pairs (after the fill).
instr() { # PROFILE LIVE PAIRS
    BENCH_PROFILE=$1 BENCH_LIVE=$2 BENCH_REPEATS=1 valgrind --tool=callgrind --callgrind-out-file="$TMP/cg" \
        --collect-atstart=no --toggle-collect=HeapAlloc --toggle-collect=HeapFree \
        "$BIN" "$3" cebox > /dev/null 2> "$TMP/cg.err"
    awk '/^summary:/ { print $2 }' "$TMP/cg"
}
per_op() { # PROFILE LIVE
    a=$(instr "$1" "$2" "$K") b=$(instr "$1" "$2" $((3 * K)))
    # bench_heap runs its one size (BENCH_LIVE) once (BENCH_REPEATS=1):
    # 2 x (2K) operations apart
    awk -v a="$a" -v b="$b" -v k="$K" 'BEGIN { printf "%.0f", (b - a) / (2 * 2 * k) }'
}

echo "| live blocks | ce3 ns/op | ce5 ns/op | ce6 ns/op | glibc ns/op | ce3 instr/op | ce5 instr/op | ce6 instr/op |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for live in 1000 10000 100000; do
    row="| $live"
    for p in ce3 ce5 ce6; do row="$row | $(ns $p $live cebox)"; done
    row="$row | $(ns ce5 $live glibc)"
    for p in ce3 ce5 ce6; do row="$row | $(per_op $p $live)"; done
    echo "$row |"
done
