#!/bin/sh
# run_start.sh - what a boxed process start costs against a native one:
# bench_start (an unboxed harness) forks and execs /bin/true N times under
# each configuration in turn, ROUNDS alternating rounds:
#   native   the harness alone
#   loaded   cebox run --only nothing: the preload library loaded, the
#            process left out of the box (the library's load and its one test)
#   ce5, ce6 cebox run --only true --profile ce5|ce6: /bin/true boxed
# every run --quiet (no summary written).  Each line: wall us/start, minor
# faults/start and the children's user and system us/start, and each
# configuration's difference to the round's native run.  Then, once per
# configuration, the instructions of one start (callgrind, /bin/true's
# process alone) and its system calls (strace), which the machine's load
# does not move; the wall times it does, so trust them only in alternating
# batches on a quiet machine.
#
#   bench/run_start.sh [ROUNDS [N]]    (default 3 rounds of 300 starts)
#   CEBOX=path/to/cebox BENCH_BIN=dir-of-bench_start  (make bench-start sets both)
set -eu
ROUNDS=${1:-3}
N=${2:-300}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/setup.sh"
TRUE=/bin/true
HARNESS="$BENCH_BIN/bench_start"
CONFIGS="native loaded ce5 ce6"

for tool in "$HARNESS" "$CEBOX"; do
    [ -x "$tool" ] || { echo "run_start: $tool is missing (make bench-start builds it)" >&2; exit 1; }
done

# in_config CONFIG COMMAND...: COMMAND, with /bin/true boxed as CONFIG says.
in_config() {
    config=$1
    shift
    case $config in
    native) "$@" ;;
    loaded) "$CEBOX" run --quiet --only nothing "$@" ;;
    ce5 | ce6) "$CEBOX" run --quiet --profile "$config" --only true "$@" ;;
    esac
}

echo "process start: $N starts of $TRUE per run, $ROUNDS alternating rounds"
: > "$TMP/walls"
for r in $(seq "$ROUNDS"); do
    for config in $CONFIGS; do
        line=$(in_config "$config" "$HARNESS" "$N" "$TRUE")
        printf '  round %s %-7s %s\n' "$r" "$config" "$line"
        echo "$config $r ${line%% *}" >> "$TMP/walls"
    done
done
# Each configuration against the native run of its own round: the machine's
# load drifts between rounds more than within one, so the difference of
# each round's pair is steadier than the difference of the medians.
echo "over native, per round (its own native run): median [min, max] us/start"
for config in $CONFIGS; do
    [ "$config" = native ] && continue
    awk -v c="$config" '$1 == "native" { n[$2] = $3 } $1 == c { v[$2] = $3 }
        END { for (r in v) if (r in n) print v[r] - n[r] }' "$TMP/walls" | sort -n |
        awk -v c="$config" '{ d[NR] = $1 } END { if (NR > 0) printf "  %-7s %.1f [%.1f, %.1f]\n", c,
            (NR % 2) ? d[(NR + 1) / 2] : (d[NR / 2] + d[NR / 2 + 1]) / 2, d[1], d[NR] }'
done

# cebox_args CONFIG: cebox run's options for CONFIG with every process
# boxed (callgrind runs outside, tracing the children).
cebox_args() {
    case $1 in
    loaded) echo "--quiet --only nothing" ;;
    ce5 | ce6) echo "--quiet --profile $1" ;;
    esac
}

if command -v valgrind > /dev/null 2>&1; then
    echo "instructions of one start (callgrind, the $TRUE process):"
    for config in $CONFIGS; do
        rm -f "$TMP"/cg.*
        if [ "$config" = native ]; then
            set -- "$TRUE"
        else
            # shellcheck disable=SC2046 # the options are words
            set -- "$CEBOX" run $(cebox_args "$config") "$TRUE"
        fi
        valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$TMP/cg.%p" "$@" > /dev/null 2>&1 || true
        file=$(grep -l "^cmd: *$TRUE" "$TMP"/cg.* 2> /dev/null | head -n 1)
        printf '  %-7s %s\n' "$config" "$([ -n "$file" ] && sed -n 's/^summary: //p' "$file" || echo "?")"
    done
else
    echo "instructions: valgrind is not installed"
fi
if command -v strace > /dev/null 2>&1 && strace -o /dev/null true 2> /dev/null; then
    echo "system calls of one start (strace, from execve to exit_group):"
    for config in $CONFIGS; do
        in_config "$config" strace -o "$TMP/strace" "$TRUE" > /dev/null 2>&1 || true
        printf '  %-7s %s\n' "$config" "$(grep -c '' "$TMP/strace")"
    done
else
    echo "system calls: strace cannot trace here"
fi
