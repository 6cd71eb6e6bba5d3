#!/bin/sh
# run_bench.sh - wall and CPU time of real programs natively, under cebox
# (default profile, recording on: --out, which records only the call stacks
# of failed allocations) and, when installed, under
# heaptrack, in alternating runs; prints the median of each and the ratios;
# then, when valgrind is installed, the instructions each executes.
#
#   bench/run_bench.sh [RUNS]        (default 7; run from the build tree)
#   BENCH_PROGRAMS="sqlite"          (default: sqlite lua python)
set -eu
RUNS=${1:-7}
PROGRAMS=${BENCH_PROGRAMS:-sqlite lua python}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
CEBOX=${CEBOX:-$TOP/cebox}
W="$HERE/workloads.sh"
export WORKLOADS="$TOP/tests/real_workloads.sh"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
have_heaptrack=no
command -v heaptrack > /dev/null 2>&1 && have_heaptrack=yes

# one NAME MODE: prints "wall cpu" in seconds for one run.
one() {
    name=$1 mode=$2
    case $mode in
    native) set -- sh -c ". '$W'; b_$name" ;;
    cebox) rm -rf "$TMP/logs"; set -- "$CEBOX" run --quiet --out "$TMP/logs" sh -c ". '$W'; b_$name" ;;
    heaptrack) set -- heaptrack -o "$TMP/ht" sh -c ". '$W'; b_$name" ;;
    esac
    start=$(date +%s%N)
    /usr/bin/time -f "%U %S" -o "$TMP/cpu" "$@" > "$TMP/out.$mode" 2> /dev/null
    end=$(date +%s%N)
    rm -f "$TMP"/ht*
    awk -v s="$start" -v e="$end" '{ printf "%.4f %.4f\n", (e - s) / 1e9, $1 + $2 }' "$TMP/cpu"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

modes="native cebox"
[ "$have_heaptrack" = yes ] && modes="$modes heaptrack"
printf '| workload | native wall (s) | cebox wall (s) | cebox/native wall | cebox/native CPU |'
[ "$have_heaptrack" = yes ] && printf ' heaptrack/native wall | cebox/heaptrack wall |'
printf '\n|---|---:|---:|---:|---:|'
[ "$have_heaptrack" = yes ] && printf -- '---:|---:|'
printf '\n'
for name in $PROGRAMS; do
    for i in $(seq 1 "$RUNS"); do
        for mode in $modes; do
            one "$name" "$mode" >> "$TMP/$name.$mode"
        done
    done
    if ! cmp -s "$TMP/out.native" "$TMP/out.cebox"; then
        echo "run_bench: $name gives different output under cebox" >&2
        exit 1
    fi
    nw=$(cut -d' ' -f1 "$TMP/$name.native" | median); nc=$(cut -d' ' -f2 "$TMP/$name.native" | median)
    cw=$(cut -d' ' -f1 "$TMP/$name.cebox" | median); cc=$(cut -d' ' -f2 "$TMP/$name.cebox" | median)
    line=$(awk -v nw="$nw" -v nc="$nc" -v cw="$cw" -v cc="$cc" -v n="$name" \
        'BEGIN { printf "| %s | %.3f | %.3f | %.2f | %.2f |", n, nw, cw, cw / nw, (nc > 0 ? cc / nc : 0) }')
    if [ "$have_heaptrack" = yes ]; then
        hw=$(cut -d' ' -f1 "$TMP/$name.heaptrack" | median)
        line="$line$(awk -v nw="$nw" -v hw="$hw" -v cw="$cw" 'BEGIN { printf " %.2f | %.2f |", hw / nw, cw / hw }')"
    fi
    echo "$line"
done
echo
echo "medians of $RUNS alternating runs; cebox: default profile (ce5), --out DIR (logs written; only failed allocations' stacks are recorded)"
[ "$have_heaptrack" = yes ] || echo "heaptrack is not installed (apt-get install heaptrack) - no comparison"

# Instructions executed (callgrind, every process of the run): the same
# ratio without the machine's timing noise.  BENCH_INSTRUCTIONS=no skips it.
instructions() {
    rm -f "$TMP"/cg.*
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$TMP/cg.%p" "$@" \
        > /dev/null 2>&1 || true
    cat "$TMP"/cg.* | awk '/^totals:/ { s += $2 } END { printf "%.0f\n", s }'
}
if [ "${BENCH_INSTRUCTIONS:-yes}" != no ] && command -v valgrind > /dev/null 2>&1; then
    echo
    echo '| workload | native instructions | cebox instructions | cebox/native instructions |'
    echo '|---|---:|---:|---:|'
    for name in $PROGRAMS; do
        ni=$(instructions sh -c ". '$W'; b_$name")
        rm -rf "$TMP/logs"
        ci=$(instructions "$CEBOX" run --quiet --out "$TMP/logs" sh -c ". '$W'; b_$name")
        awk -v n="$name" -v ni="$ni" -v ci="$ci" \
            'BEGIN { printf "| %s | %.0f M | %.0f M | %.2f |\n", n, ni / 1e6, ci / 1e6, ci / ni }'
    done
    echo
    echo "instructions: callgrind, one run each, every process counted (cebox run itself included)"
fi
