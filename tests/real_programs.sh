#!/bin/sh
# real_programs.sh - real Debian programs under cebox, compared with the same
# run without it.
#
#  - under --profile ce6 (a 2 GB box) stdout and exit status must be
#    identical to the native run;
#  - under the default profile (ce5, 32 MB slot) workloads that fit must be
#    identical too, and the "big" workloads, made to outgrow the slot, must
#    fail by the program's own error handling: a non-zero exit status below
#    128, never a signal.
set -u
B="${top_builddir:-.}"
CEBOX="$(cd "$B" && pwd)/cebox"
WORKLOADS="$(cd "${top_srcdir:-.}" && pwd)/tests/real_workloads.sh"
. "${top_srcdir:-.}/tests/testlib.sh"


need="sqlite3 lua5.4 /usr/bin/python3 perl gawk jq gzip git make gcc sort ls bash"
for p in $need; do
    command -v "$p" > /dev/null 2>&1 || { echo "not ok - $p is not installed (./bootstrap.sh installs it)"; fails=$((fails + 1)); }
done
[ "$fails" -eq 0 ] || { echo "0 passed, $fails failed"; exit 1; }

# ---- inputs, made once (the workloads are in real_workloads.sh)
seq 1 300000 | awk '{ print ($1 * 7919) % 1000003, "line", $1 }' > "$TMP/numbers.txt"
mkdir -p "$TMP/proj"
cat > "$TMP/proj/a.c" <<'C'
int twice(int x) { return 2 * x; }
C
cat > "$TMP/proj/main.c" <<'C'
#include <stdio.h>
int twice(int x);
int main(void) { printf("%d\n", twice(21)); return 0; }
C
printf 'app: a.o main.o\n\t$(CC) -o app a.o main.o\n%%.o: %%.c\n\t$(CC) -O1 -c $<\n' > "$TMP/proj/Makefile"

# run NAME WRAPPER...: runs workload NAME in a fresh directory, stdout to
# $TMP/NAME.WRAPPER.out, returns its exit status.
run() {
    name=$1 tag=$2
    shift 2
    dir="$TMP/$name.$tag.d"
    mkdir -p "$dir"
    (cd "$dir" && INPUTS="$TMP" "$@" sh -c ". '$WORKLOADS'; w_$name") > "$TMP/$name.$tag.out" 2> "$TMP/$name.$tag.err"
}


same() { # same NAME TAG: output and status equal to the native run
    name=$1 tag=$2 status=$3
    if [ "$status" -eq "$(cat "$TMP/$name.native.status")" ] && cmp -s "$TMP/$name.native.out" "$TMP/$name.$tag.out"; then
        ok "$name under $tag: same output and exit status as natively"
    else
        bad "$name under $tag: differs from the native run (exit $status)"
        sed 's/^/#   /' "$TMP/$name.$tag.err" | head -10
    fi
}

for name in ls sort gzip sqlite lua python perl gawk jq bash make git sqlite_big lua_big python_big; do
    run "$name" native env; echo $? > "$TMP/$name.native.status"
    if [ "$(cat "$TMP/$name.native.status")" -ne 0 ]; then
        bad "$name fails natively (exit $(cat "$TMP/$name.native.status"))"
        sed 's/^/#   /' "$TMP/$name.native.err" | head -5
        continue
    fi
    run "$name" ce6 "$CEBOX" run --quiet --profile ce6; same "$name" ce6 $?
    run "$name" ce5 "$CEBOX" run --quiet; st=$?
    case $name in
    *_big)
        if [ "$st" -gt 0 ] && [ "$st" -lt 128 ]; then
            ok "$name under ce5 outgrows the slot and fails by its own error handling (exit $st)"
        else
            bad "$name under ce5: expected a graceful failure, got exit $st"
            sed 's/^/#   /' "$TMP/$name.ce5.err" | head -10
        fi ;;
    *) same "$name" ce5 "$st" ;;
    esac
done

# The host's read-ahead of heap commits (--commit-ahead) changes nothing
# CE sees: the exit summary (slot, committed pages and their kinds, heap,
# headroom) is the exact mode's, line for line.  The program's summary:
# not its wrapper shell's, whose heap holds the environment, which differs
# by the setting.
summary_of() {
    awk '/^cebox: pid / { keep = $0 !~ /\(sh -c / } keep && /^cebox:/' "$TMP/$1.$2.err" | sed 's/pid [0-9]*/pid N/'
}
for name in sqlite lua; do
    run "$name" ahead "$CEBOX" run; st_ahead=$?
    run "$name" exact "$CEBOX" run --commit-ahead 0; st_exact=$?
    if [ "$st_ahead" -eq 0 ] && [ "$st_exact" -eq 0 ] && [ -n "$(summary_of "$name" ahead)" ] &&
       [ "$(summary_of "$name" ahead)" = "$(summary_of "$name" exact)" ]; then
        ok "$name: the exit summary with read-ahead is the exact mode's"
    else
        bad "$name: the exit summary differs with --commit-ahead 0 (exit $st_ahead, $st_exact)"
        diff "$TMP/$name.ahead.err" "$TMP/$name.exact.err" | head -10 | sed 's/^/#   /'
    fi
done

finish
