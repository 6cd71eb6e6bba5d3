#!/bin/sh
# bench_timeline.sh - what the timeline costs the program: bench workloads
# under `cebox run` without --out (no timeline) and with --out (the
# timeline on, every --sample-interval, 50 ms by default).
#
# Three settings: no --out; --out --sample-interval 0 (the log, and the
# figures the program publishes, but no sample from cebox run); --out (the
# timeline every 50 ms).  Per workload and setting: the instructions of the
# workload's own process
# (callgrind, --trace-children=yes; the files of cebox run's shell, which
# does the sampling, are left out), then ROUNDS alternating wall-time runs
# (their median).  Under callgrind the program runs some 50 times
# slower while cebox run's tick stays at 20 ms, so the free figures (asked
# for at every tick) are computed about 50 times as often per instruction
# of the program as in a real run: the instruction counts overstate their
# share.  A second table gives, for those callgrind runs, the logs' bytes,
# the slot maps cebox run sampled into them (record 13: one per tick that
# saw a member's map change) and cebox run's own instructions.
#
#   bench/bench_timeline.sh [ROUNDS]      (default 3; BENCH_ROUNDS=N too)
#   BENCH_WORKLOADS="cfrac lua xmalloc"   (the default)
#   BENCH_RUN_OPTIONS="--profile ce6"      (more options of cebox run: a 2 GB slot's map of 32768 blocks)
#   CEBOX=path/to/cebox BENCH_BIN=dir-of-bench_*  (make bench-timeline sets both)
set -eu
ROUNDS=${BENCH_ROUNDS:-${1:-3}}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/setup.sh"
LIST=${BENCH_WORKLOADS:-cfrac lua xmalloc}
# Smaller variants for callgrind (seconds each).
cg_cfrac() { bench_cfrac 400000; }
cg_lua() { LUA_ROUNDS=3 w_lua; }
cg_xmalloc() { bench_xmalloc 200000; }

# `bench_timeline.sh --run FUNC`: runs one workload function (what cebox
# run starts, so the workload's programs are boxed).
if [ "${1:-}" = --run ]; then
    "$2"
    exit
fi

# Runs workload function $2 under cebox run, the timeline off or on ($1),
# with the words after them (a tool) in front of cebox run.
in_box() {
    mode=$1 func=$2
    shift 2
    set -- "$@" "$CEBOX" run --quiet ${BENCH_RUN_OPTIONS:-}
    if [ "$mode" != off ]; then
        rm -rf "$TMP/out" && mkdir "$TMP/out"
        set -- "$@" --out "$TMP/out"
    fi
    if [ "$mode" = zero ]; then
        set -- "$@" --sample-interval 0
    fi
    "$@" -- sh "$HERE/bench_timeline.sh" --run "$func" > /dev/null
}

# Instructions of the workload's process: every callgrind file but those of
# cebox (the shell) and sh (the wrapper); cebox run's (the shell's) into
# $TMP/shell.$1, the bytes of the logs into $TMP/log.$1 and their slot
# maps sampled on the timeline (record 13) into $TMP/maps.$1.
instructions() {
    rm -f "$TMP"/cg.*
    in_box "$1" "$2" valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$TMP/cg.%p" 2> /dev/null
    : > "$TMP/shell.$1"
    for f in "$TMP"/cg.*; do
        cmd=$(sed -n 's/^cmd: //p' "$f" | awk '{ print $1 }')
        case "$(basename "$cmd")" in
        cebox) sed -n 's/^totals: //p' "$f" >> "$TMP/shell.$1"; continue ;;
        sh | dash) continue ;;
        esac
        sed -n 's/^totals: //p' "$f"
    done | awk '{ s += $1 } END { printf "%.0f\n", s }'
    cat "$TMP"/out/cebox-*.log 2> /dev/null | wc -c > "$TMP/log.$1"
    cat "$TMP"/out/cebox-*.log 2> /dev/null | python3 -c '
import struct, sys
d, off, n = sys.stdin.buffer.read(), 0, 0
while off + 16 <= len(d) and struct.unpack("<I", d[off:off + 4])[0] == 0x474C4243:
    kind, length = struct.unpack("<H2xI", d[off + 4:off + 12])
    n, off = n + (kind == 13), off + 16 + length
print(n)' > "$TMP/maps.$1" 2> /dev/null || echo "?" > "$TMP/maps.$1"
}
sum() { awk '{ s += $1 } END { printf "%.0f\n", s }' "$1"; }

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "| workload | instructions, no --out | --out --sample-interval 0 | --out (timeline) | timeline / no --out | wall s, no --out | --out, interval 0 | --out | --out / no --out |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
: > "$TMP/logs"
for name in $LIST; do
    func=b_$name cgf=cg_$name
    i_off=$(instructions off "$cgf")
    i_zero=$(instructions zero "$cgf")
    i_on=$(instructions on "$cgf")
    echo "| $name | $(cat "$TMP/log.zero") | $(cat "$TMP/log.on") | $(cat "$TMP/maps.on") | $(sum "$TMP/shell.zero") | $(sum "$TMP/shell.on") |" >> "$TMP/logs"
    : > "$TMP/w.off"
    : > "$TMP/w.zero"
    : > "$TMP/w.on"
    r=0
    while [ $r -lt "$ROUNDS" ]; do
        for mode in off zero on; do
            start=$(date +%s.%N)
            in_box "$mode" "$func"
            end=$(date +%s.%N)
            awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }' >> "$TMP/w.$mode"
        done
        r=$((r + 1))
    done
    w_off=$(median < "$TMP/w.off")
    w_zero=$(median < "$TMP/w.zero")
    w_on=$(median < "$TMP/w.on")
    awk -v n="$name" -v a="$i_off" -v z="$i_zero" -v b="$i_on" -v c="$w_off" -v y="$w_zero" -v d="$w_on" 'BEGIN {
        printf "| %s | %d | %d | %d | %.4f | %.3f | %.3f | %.3f | %.3f |\n", n, a, z, b, b / a, c, y, d, d / c }'
done
echo "instructions: callgrind, the workload's processes only (not cebox run's shell), one run each; wall: median of $ROUNDS alternating runs"
echo
echo "| workload | log bytes, --out --sample-interval 0 | log bytes, --out | slot maps sampled (record 13) | cebox run's instructions, interval 0 | cebox run's instructions, --out |"
echo "|---|---:|---:|---:|---:|---:|"
cat "$TMP/logs"
echo "logs and cebox run's instructions: of the callgrind runs above (the workload some 50 times slower against the same 20 ms tick, so many more ticks than in a real run)"
