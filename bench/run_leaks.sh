#!/bin/sh
# run_leaks.sh - what leak hunting costs: the workloads of bench/workloads.sh
# (sqlite, lua, python, and bench_cfrac's small-block churn) natively, under
# `cebox run` without and with --leaks (every allocation's stack captured,
# deduplicated, and classified at exit), and under heaptrack, which records
# every allocation's stack too.
#
# One alternating batch: ROUNDS rounds, each running every workload once in
# every configuration in turn, timed by /usr/bin/time (wall, and user +
# system CPU of the whole process tree: on a shared machine CPU is the
# steadier of the two); the table gives medians, and each configuration's
# added time over the native run beside heaptrack's.  Then the instructions
# of one run of each (callgrind, every process; none for heaptrack, whose
# library records nothing under valgrind; BENCH_INSTRUCTIONS=no skips them),
# and cebox's own memory with --leaks: its bookkeeping at exit (meta.c: the
# live-block table, the stack table, the unwinder's caches) over that of a
# run without, per block at the heap's peak.
#
# heaptrack follows no child (under `heaptrack sh -c ...` it would trace the
# shell alone), so it wraps the workload's program itself: a script of that
# name first on PATH runs the real one under heaptrack (PYTHON3 names it for
# the python workload, which calls python by its path).  heaptrack writes
# the command line into its trace as it is, and a line of a `python -c`
# program can read as one of its records ("text = ..." did: nothing was
# recorded), so there the shim runs the program from a file.
#
#   bench/run_leaks.sh [ROUNDS]      (default 3; BENCH_ROUNDS=N too)
#   BENCH_WORKLOADS="lua cfrac"      (default: sqlite lua python cfrac)
#   CEBOX=path/to/cebox BENCH_BIN=dir-of-bench_cfrac  (make bench-leaks sets both)
#
# Packages: apt-get install heaptrack valgrind time sqlite3 lua5.4 python3
set -eu
ROUNDS=${BENCH_ROUNDS:-${1:-3}}
HERE=$(cd "$(dirname "$0")" && pwd)
W="$HERE/workloads.sh"
. "$HERE/setup.sh"
LIST=${BENCH_WORKLOADS:-sqlite lua python cfrac}
CONFIGS="native cebox leaks"
note() { echo "run_leaks: $*" >&2; }

[ -x "$CEBOX" ] || { note "$CEBOX is missing (make bench-leaks builds it)"; exit 1; }
[ -x /usr/bin/time ] || { note "/usr/bin/time is missing (apt-get install time)"; exit 1; }
if command -v heaptrack > /dev/null 2>&1; then
    CONFIGS="$CONFIGS heaptrack"
else
    note "heaptrack is not installed: no heaptrack runs (apt-get install heaptrack)"
fi

mkdir "$TMP/shim"
for name in $LIST; do
    eval "prog=\${p_$name:-}"
    [ -n "$prog" ] || { note "unknown workload '$name' (workloads.sh has no p_$name)"; exit 1; }
    real=$(command -v "$prog") || { note "$prog (workload $name) is not installed"; exit 1; }
    [ "$prog" = python3 ] && real=/usr/bin/python3 # the workload's, not a wrapper first on PATH
    {
        echo '#!/bin/sh'
        [ "$prog" = python3 ] &&
            printf 'if [ "$1" = -c ]; then printf "%%s\\n" "$2" > "%s/prog.py"; shift 2; set -- "%s/prog.py" "$@"; fi\n' "$TMP" "$TMP"
        printf 'exec heaptrack -o "%s/ht" "%s" "$@"\n' "$TMP" "$real"
    } > "$TMP/shim/$prog"
    chmod +x "$TMP/shim/$prog"
done

# in_config CONFIG NAME [PREFIX...]: PREFIX, then the command line of
# workload NAME in CONFIG.
in_config() {
    config=$1 wl=". '$W'; b_$2"
    shift 2
    case $config in
    native) "$@" sh -c "$wl" ;;
    cebox) "$@" "$CEBOX" run sh -c "$wl" ;;
    leaks) "$@" "$CEBOX" run --leaks sh -c "$wl" ;;
    heaptrack) "$@" env PATH="$TMP/shim:$PATH" PYTHON3="$TMP/shim/python3" sh -c "$wl" ;;
    esac
}

# check NAME CONFIG STATUS: whether the run in $TMP/out, $TMP/err was a real,
# successful one (the native run's output; cebox's summary of the program,
# or heaptrack's count of its allocations); says why not.
check() {
    name=$1 config=$2 status=$3
    eval "prog=\$p_$name"
    rm -f "$TMP"/ht*
    if [ "$status" -ne 0 ]; then
        note "$name under $config: exit status $status: $(tail -n 2 "$TMP/err" | tr '\n' ' ')"
        return 1
    fi
    case $config in
    native) [ -e "$TMP/expect.$name" ] || cp "$TMP/out" "$TMP/expect.$name" ;;
    cebox | leaks)
        cmp -s "$TMP/out" "$TMP/expect.$name" || { note "$name under $config: other output"; return 1; }
        grep -q "^cebox: pid [0-9]* ([^ )]*$prog[ )]" "$TMP/err" ||
            { note "$name under $config: no summary of $prog: it did not run in the box"; return 1; } ;;
    heaptrack)
        # heaptrack's own lines share the program's stdout
        [ "$(grep -c -x -F -f "$TMP/expect.$name" "$TMP/out")" -ge "$(grep -c '' "$TMP/expect.$name")" ] ||
            { note "$name under heaptrack: other output"; return 1; }
        grep -q 'allocations:[[:space:]]*[1-9]' "$TMP/err" ||
            { note "$name: heaptrack recorded no allocation of $prog"; return 1; } ;;
    esac
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# own_kb FILE PROG: cebox's bookkeeping at exit, in KB, from the summary of
# PROG's process; then its peak blocks.
own_kb() {
    awk -v prog="$2" '
        function kb(v, u) { return u == "bytes" ? v / 1024 : u == "KB" ? v : u == "MB" ? v * 1024 : v * 1048576 }
        /^cebox: pid [0-9]+ \(/ { mine = index($0, prog) > 0 }
        mine && /own memory/ { for (i = 1; i <= NF; i++) if ($i == "bookkeeping") own = kb($(i + 1), $(i + 2)) }
        mine && /heap: peak/ { for (i = 1; i <= NF; i++) if ($i == "blocks,") blocks = $(i - 1) }
        END { printf "%s %s\n", own, blocks }' "$1"
}

# ---- the timed batch (and the memory figures of its cebox runs)
for round in $(seq 1 "$ROUNDS"); do
    note "round $round of $ROUNDS"
    for name in $LIST; do
        eval "prog=\$p_$name"
        for config in $CONFIGS; do
            [ -e "$TMP/fail.$name.$config" ] && continue
            status=0
            in_config "$config" "$name" /usr/bin/time -f "TIME %e %U %S" -o "$TMP/time" \
                > "$TMP/out" 2> "$TMP/err" || status=$?
            if check "$name" "$config" "$status"; then
                awk '/^TIME/ { print $2, $3 + $4 }' "$TMP/time" >> "$TMP/cost.$name.$config"
                case $config in cebox | leaks) own_kb "$TMP/err" "$prog" >> "$TMP/own.$name.$config" ;; esac
            else
                touch "$TMP/fail.$name.$config"
            fi
        done
    done
done

# ---- instructions, one run each
instructions() {
    rm -f "$TMP"/cg.*
    in_config "$1" "$2" valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$TMP/cg.%p" \
        > /dev/null 2>&1 || return 1
    cat "$TMP"/cg.* | awk '/^totals:/ { s += $2 } END { printf "%.0f\n", s }'
}
if [ "${BENCH_INSTRUCTIONS:-yes}" != no ] && command -v valgrind > /dev/null 2>&1; then
    note "instructions"
    for name in $LIST; do
        for config in native cebox leaks; do
            [ -e "$TMP/fail.$name.$config" ] && continue
            instructions "$config" "$name" > "$TMP/instr.$name.$config" || rm -f "$TMP/instr.$name.$config"
        done
    done
fi

# ---- the tables
col() { cut -d' ' -f"$2" "$1" 2> /dev/null | median; }
echo '| workload | configuration | wall (s) | CPU (s) | CPU added over native | added / heaptrack'"'"'s | instructions / native |'
echo '|---|---|---:|---:|---:|---:|---:|'
for name in $LIST; do
    ncpu=$(col "$TMP/cost.$name.native" 2)
    hcpu=$(col "$TMP/cost.$name.heaptrack" 2)
    ni=$(cat "$TMP/instr.$name.native" 2> /dev/null || true)
    for config in $CONFIGS; do
        if [ -e "$TMP/fail.$name.$config" ]; then
            echo "| $name | $config | failed | | | | |"
            continue
        fi
        instr=$(cat "$TMP/instr.$name.$config" 2> /dev/null || true)
        awk -v n="$name" -v c="$config" -v w="$(col "$TMP/cost.$name.$config" 1)" \
            -v cpu="$(col "$TMP/cost.$name.$config" 2)" -v ncpu="$ncpu" -v hcpu="$hcpu" \
            -v i="$instr" -v ni="$ni" 'BEGIN {
            added = cpu - ncpu
            hadd = (hcpu != "") ? hcpu - ncpu : ""
            rel = (c != "native" && hadd != "" && hadd > 0) ? sprintf("%.2f", added / hadd) : "-"
            ir = (i != "" && ni > 0) ? sprintf("%.2f", i / ni) : "-"
            printf "| %s | %s | %.3f | %.3f | %s | %s | %s |\n", n, c, w, cpu,
                (c == "native") ? "-" : sprintf("%+.3f", added), rel, ir
        }'
    done
done
echo
echo "medians of $ROUNDS alternating rounds; CPU: user + system of every process (/usr/bin/time); added / heaptrack's: the configuration's added CPU over heaptrack's (the goal for leaks: at most 0.5); instructions: callgrind --trace-children=yes, one run, every process"
echo
echo '| workload | peak blocks | bookkeeping, no --leaks (KB) | with --leaks (KB) | added per peak block (bytes) |'
echo '|---|---:|---:|---:|---:|'
for name in $LIST; do
    [ -e "$TMP/own.$name.leaks" ] && [ -e "$TMP/own.$name.cebox" ] || continue
    base=$(col "$TMP/own.$name.cebox" 1)
    awk -v n="$name" -v base="$base" -v own="$(col "$TMP/own.$name.leaks" 1)" \
        -v blocks="$(col "$TMP/own.$name.leaks" 2)" 'BEGIN {
        printf "| %s | %d | %.0f | %.0f | %.1f |\n", n, blocks, base, own,
            (blocks > 0) ? (own - base) * 1024 / blocks : 0 }'
done
echo
echo "bookkeeping: cebox's own memory at the program's exit (meta.c, page-rounded), from its exit summary; with --leaks it holds the live-block table, the stack table and the unwinder's caches"
echo "configurations: native: sh -c \". bench/workloads.sh; b_NAME\"; cebox: cebox run (the same); leaks: cebox run --leaks (the same); heaptrack: the program itself under heaptrack -o FILE"
