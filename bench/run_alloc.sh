#!/bin/sh
# run_alloc.sh - the allocation workloads of bench/workloads.sh (larson,
# xmalloc, mstress, cfrac: bench/bench_*.c; perl's growing string; process
# start) natively and under every allocator at hand: cebox (--profile ce5,
# where the workload fits its 32 MB slot, and ce6), jemalloc and mimalloc
# (Debian's libjemalloc2 and libmimalloc2.0, by LD_PRELOAD) and heaptrack.
#
# One alternating batch: ROUNDS rounds, each running every workload once
# under every configuration in turn, timed by bench_run (wall, and page
# faults of the whole process tree); the table gives medians.  Then, once
# per workload and configuration: the system calls of every process (perf
# stat of raw_syscalls:sys_enter when perf can count it, else strace -f -c)
# and the instructions (callgrind, --trace-children=yes, summed over all
# processes; BENCH_INSTRUCTIONS=no skips it).
#
# A run counts only when it exits 0, prints what the native run printed and
# really ran under its allocator: under cebox the exit summary of the
# workload's program must be on stderr, under heaptrack its statistics must
# show allocations; jemalloc and mimalloc are checked to load once.  A
# configuration whose run fails is reported as failed, with the reason, and
# not run again.
#
#   bench/run_alloc.sh [ROUNDS]     (default 5; BENCH_ROUNDS=N too)
#   BENCH_WORKLOADS="larson cfrac"  (default: larson xmalloc mstress cfrac perl true)
#   CEBOX=path/to/cebox BENCH_BIN=dir-of-bench_run-and-bench_*  (make bench-alloc sets both)
#
# Packages: apt-get install heaptrack libjemalloc2 libmimalloc2.0 strace valgrind time
set -eu
ROUNDS=${BENCH_ROUNDS:-${1:-5}}
HERE=$(cd "$(dirname "$0")" && pwd)
W="$HERE/workloads.sh"
. "$HERE/setup.sh"
LIST=${BENCH_WORKLOADS:-larson xmalloc mstress cfrac perl true}

note() { echo "run_alloc: $*" >&2; }

for tool in "$BENCH_BIN/bench_run" "$CEBOX"; do
    [ -x "$tool" ] || { note "$tool is missing (make bench-alloc builds it)"; exit 1; }
done
for name in $LIST; do
    eval "prog=\${p_$name:-}"
    [ -n "$prog" ] || { note "unknown workload '$name' (workloads.sh has no p_$name)"; exit 1; }
done

# A preloaded allocator's library, or nothing (with a note) when it is not
# installed or does not load.
find_lib() {
    for d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib/*-linux-gnu /usr/lib64 /usr/lib; do
        if [ -e "$d/$2" ]; then
            if env LD_PRELOAD="$d/$2" cat /proc/self/maps | grep -q "/${2%%.so*}\.so"; then
                echo "$d/$2"
                return
            fi
        fi
    done
    note "$2 not found or not loadable: no $1 runs (apt-get install $3)"
}
JEMALLOC=${JEMALLOC:-$(find_lib jemalloc libjemalloc.so.2 libjemalloc2)}
MIMALLOC=${MIMALLOC:-$(find_lib mimalloc libmimalloc.so.2 libmimalloc2.0)}
CONFIGS="native ce5 ce6"
[ -n "$JEMALLOC" ] && CONFIGS="$CONFIGS jemalloc"
[ -n "$MIMALLOC" ] && CONFIGS="$CONFIGS mimalloc"
if command -v heaptrack > /dev/null 2>&1; then
    CONFIGS="$CONFIGS heaptrack"
else
    note "heaptrack is not installed: no heaptrack runs (apt-get install heaptrack)"
fi

# heaptrack follows no child process (under `heaptrack sh -c ...` it would
# trace the shell alone), so it wraps the workload's program itself: a
# script of that name first on PATH runs the real one under heaptrack.
mkdir "$TMP/shim"
for name in $LIST; do
    eval "prog=\$p_$name"
    real=$(command -v "$prog") || { note "$prog (workload $name) is not installed"; exit 1; }
    printf '#!/bin/sh\nexec heaptrack -o "%s/ht" "%s" "$@"\n' "$TMP" "$real" > "$TMP/shim/$prog"
    chmod +x "$TMP/shim/$prog"
done

# in_config CONFIG FUNCTION [PREFIX...]: runs PREFIX followed by the command
# line of CONFIG for the workload shell function FUNCTION.
in_config() {
    config=$1 wl=". '$W'; $2"
    shift 2
    case $config in
    native) "$@" sh -c "$wl" ;;
    ce5 | ce6) "$@" "$CEBOX" run --profile "$config" sh -c "$wl" ;;
    jemalloc) "$@" env LD_PRELOAD="$JEMALLOC" sh -c "$wl" ;;
    mimalloc) "$@" env LD_PRELOAD="$MIMALLOC" sh -c "$wl" ;;
    heaptrack) "$@" env PATH="$TMP/shim:$PATH" sh -c "$wl" ;;
    esac
}

describe_config() {
    case $1 in
    native) echo "sh -c \". bench/workloads.sh; b_NAME\"" ;;
    ce5 | ce6) echo "cebox run --profile $1 sh -c \". bench/workloads.sh; b_NAME\"" ;;
    jemalloc) echo "env LD_PRELOAD=$JEMALLOC sh -c \". bench/workloads.sh; b_NAME\"" ;;
    mimalloc) echo "env LD_PRELOAD=$MIMALLOC sh -c \". bench/workloads.sh; b_NAME\"" ;;
    heaptrack) echo "env PATH=SHIM:\$PATH sh -c \". bench/workloads.sh; b_NAME\" (SHIM/PROG: exec heaptrack -o FILE /path/to/PROG \"\$@\")" ;;
    esac
}

# The configurations of workload NAME: ce5 only if it fits the slot.
configs_of() {
    for config in $CONFIGS; do
        if [ "$config" = ce5 ] && [ -n "$(echo " $CE5_TOO_BIG " | grep " $1 ")" ]; then
            continue
        fi
        echo "$config"
    done
}

# heaptrack's own lines on stdout, and blank lines, are not the workload's.
own_output() {
    sed -e '/^heaptrack output will be written/d' -e '/libheaptrack_preload\.so$/d' \
        -e '/^starting application, this might/d' -e '/^  heaptrack --analyze/d' \
        -e 's/Heaptrack finished! Now run the following to investigate the data:$//' \
        -e '/^$/d' "$1"
}

failed() { [ -e "$TMP/fail.$1.$2" ]; }

# check NAME CONFIG STATUS: whether the run whose streams are in
# $TMP/out and $TMP/err was a real, successful one; records why not.
check() {
    name=$1 config=$2 status=$3
    eval "prog=\$p_$name"
    why=
    own_output "$TMP/out" > "$TMP/own"
    if [ "$status" -ne 0 ]; then
        why="exit status $status: $(tail -n 3 "$TMP/err" | tr '\n' ' ')"
    elif [ "$config" = native ]; then
        [ -e "$TMP/expect.$name" ] || cp "$TMP/own" "$TMP/expect.$name"
    elif [ ! -e "$TMP/expect.$name" ]; then
        why="no native output to compare with"
    elif ! cmp -s "$TMP/own" "$TMP/expect.$name"; then
        why="output differs from the native run's: $(head -c 200 "$TMP/own" | tr '\n' ' ')(stderr: $(tail -n 2 "$TMP/err" | tr '\n' ' '))"
    fi
    case $config in
    ce5 | ce6)
        if [ -z "$why" ] && ! grep -q "^cebox: pid [0-9]* ([^ )]*$prog[ )]" "$TMP/err"; then
            why="no cebox summary of $prog on stderr: it did not run in the box"
        fi ;;
    heaptrack)
        if [ -z "$why" ] && ! grep -q 'allocations:[[:space:]]*[1-9]' "$TMP/err"; then
            why="heaptrack recorded no allocation of $prog"
        fi ;;
    esac
    rm -f "$TMP"/ht*
    if [ -n "$why" ]; then
        echo "$why" > "$TMP/fail.$name.$config"
        note "$name under $config failed: $why"
        return 1
    fi
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ---- the timed batch
start=$(date +%s)
for round in $(seq 1 "$ROUNDS"); do
    note "round $round of $ROUNDS"
    for name in $LIST; do
        for config in $(configs_of "$name"); do
            failed "$name" "$config" && continue
            status=0
            in_config "$config" "b_$name" "$BENCH_BIN/bench_run" "$TMP/cost" > "$TMP/out" 2> "$TMP/err" || status=$?
            check "$name" "$config" "$status" && cat "$TMP/cost" >> "$TMP/cost.$name.$config"
        done
    done
done

# ---- system calls, once per workload and configuration
syscall_tool=
if perf stat -x, -e raw_syscalls:sys_enter -o "$TMP/perf" -- true > /dev/null 2>&1 \
    && grep -q raw_syscalls "$TMP/perf"; then
    syscall_tool="perf stat -e raw_syscalls:sys_enter (every process)"
    count_syscalls() {
        in_config "$1" "b_$2" perf stat -x, -e raw_syscalls:sys_enter -o "$TMP/perf" --
    }
    syscalls_total() { awk -F, '/raw_syscalls/ { print $1 }' "$TMP/perf"; }
elif command -v strace > /dev/null 2>&1; then
    syscall_tool="strace -f -c (every process)"
    count_syscalls() { in_config "$1" "b_$2" strace -f -c -o "$TMP/strace"; }
    syscalls_total() { awk '$NF == "total" { print $4 }' "$TMP/strace"; }
else
    note "neither perf nor strace: no system call counts (apt-get install strace)"
fi
if [ -n "$syscall_tool" ]; then
    note "system calls"
    for name in $LIST; do
        for config in $(configs_of "$name"); do
            failed "$name" "$config" && continue
            status=0
            count_syscalls "$config" "$name" > "$TMP/out" 2> "$TMP/err" || status=$?
            check "$name" "$config" "$status" && syscalls_total > "$TMP/calls.$name.$config"
        done
    done
fi

# ---- instructions (callgrind, every process), once each; a workload may
# name a smaller variant of itself for this (cg_NAME)
instructions() {
    rm -f "$TMP"/cg.*
    in_config "$1" "$2" valgrind --tool=callgrind --trace-children=yes \
        --callgrind-out-file="$TMP/cg.%p"
}
instructions_total() { cat "$TMP"/cg.* | awk '/^totals:/ { s += $2 } END { printf "%.0f\n", s }'; }
count_instructions=no
if [ "${BENCH_INSTRUCTIONS:-yes}" = no ]; then
    note "BENCH_INSTRUCTIONS=no: no instruction counts"
elif ! command -v valgrind > /dev/null 2>&1; then
    note "valgrind is not installed: no instruction counts (apt-get install valgrind)"
else
    count_instructions=yes
    note "instructions"
    for name in $LIST; do
        func=b_$name
        if command -v "cg_$name" > /dev/null 2>&1; then
            func=cg_$name
            rm -f "$TMP/expect.$name" # the smaller variant prints its own
        fi
        for config in $(configs_of "$name"); do
            failed "$name" "$config" && continue
            # under valgrind, heaptrack's library records no allocation
            [ "$config" = heaptrack ] && continue
            status=0
            instructions "$config" "$func" > "$TMP/out" 2> "$TMP/err" || status=$?
            check "$name" "$config" "$status" && instructions_total > "$TMP/instr.$name.$config"
        done
    done
fi
elapsed=$(( $(date +%s) - start ))

# ---- the table
echo '| workload | configuration | wall median (s) | wall / native | instructions | instructions / native | system calls | page faults |'
echo '|---|---|---:|---:|---:|---:|---:|---:|'
for name in $LIST; do
    nw=$(cut -d' ' -f1 "$TMP/cost.$name.native" 2> /dev/null | median)
    ni=$(cat "$TMP/instr.$name.native" 2> /dev/null || true)
    for config in $(configs_of "$name"); do
        if failed "$name" "$config"; then
            echo "| $name | $config | failed: $(cat "$TMP/fail.$name.$config") | | | | | |"
            continue
        fi
        w=$(cut -d' ' -f1 "$TMP/cost.$name.$config" | median)
        faults=$(awk '{ print $3 + $4 }' "$TMP/cost.$name.$config" | median)
        calls=$(cat "$TMP/calls.$name.$config" 2> /dev/null || echo -)
        instr=$(cat "$TMP/instr.$name.$config" 2> /dev/null || true)
        awk -v n="$name" -v c="$config" -v w="$w" -v nw="$nw" -v i="$instr" -v ni="$ni" \
            -v calls="$calls" -v f="$faults" 'BEGIN {
            wr = (nw > 0) ? sprintf("%.2f", w / nw) : "-"
            is = (i != "") ? sprintf("%.0f M", i / 1e6) : "-"
            ir = (i != "" && ni > 0) ? sprintf("%.2f", i / ni) : "-"
            printf "| %s | %s | %.3f | %s | %s | %s | %s | %.0f |\n", n, c, w, wr, is, ir, calls, f
        }'
    done
done
echo
echo "wall: median of $ROUNDS alternating rounds (bench_run: fork to wait); page faults: median of the same runs, minor + major, every process (getrusage RUSAGE_CHILDREN)"
[ -n "$syscall_tool" ] && echo "system calls: $syscall_tool, one run"
[ "$count_instructions" = yes ] && echo "instructions: callgrind --trace-children=yes, one run, summed over every process; none for heaptrack (under valgrind its library records no allocation)"
for name in $LIST; do
    [ -z "$(echo " $CE5_TOO_BIG " | grep " $name ")" ] || echo "$name: no ce5 runs (CE5_TOO_BIG)"
    eval "why=\${note_$name:-}"
    [ -z "$why" ] || echo "$name: $why"
done
echo "configurations (b_NAME: bench/workloads.sh):"
for config in $CONFIGS; do
    echo "  $config: $(describe_config "$config")"
done
echo "batch: $elapsed s"
