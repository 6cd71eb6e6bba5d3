#!/bin/sh
# faults.sh - fault injection end to end: tests/programs/faults (twelve
# known allocation calls, its output saying which failed) under
# `cebox run --fail-*`:
#  - --fail-nth fails exactly the listed calls, --fail-every each multiple,
#    with ENOMEM; the summary counts them as injected; a forked child
#    counts its own calls;
#  - --fail-probability with --seed: the same seed fails the same calls;
#  - the size window, the time window, --fail-in a function of the
#    program, --fail-state with and without --state;
#  - --fail-once-per-stack across runs (the second fails only the stacks
#    the first did not see) and in parallel runs (each stack once in all);
#  - a program linked with libcebox: each Win32-named allocation call fails
#    alone with ERROR_NOT_ENOUGH_MEMORY, its first call (VirtualAlloc,
#    which starts the core) counted too;
#  - `cebox report --format json`: reason "injected" and the stack;
#  - every option's bad value: one line, exit status 2.
set -u
B="${top_builddir:-.}"
CEBOX="$B/cebox"
PROG="$B/tests/programs/faults"
. "${top_srcdir:-.}/tests/testlib.sh"
BAD_SHOW="$TMP/out $TMP/err"

# The numbers of the calls that failed, "3 5", after running with options.
failed() {
    "$CEBOX" run "$@" > "$TMP/out" 2> "$TMP/err"
    grep ' FAIL ' "$TMP/out" | cut -d' ' -f1 | tr '\n' ' ' | sed 's/ $//'
}

expect() { # name, expected failed calls, options...
    name=$1 want=$2
    shift 2
    got=$(failed "$@")
    if [ "$got" = "$want" ] && [ "$(wc -l < "$TMP/out")" -eq 12 ]; then ok "$name"; else bad "$name: failed '$got', expected '$want'"; fi
}

expect "no rule: nothing fails" "" "$PROG"
grep -q 'injected' "$TMP/err" && bad "no rule: the summary says nothing injected" || ok "no rule: the summary says nothing injected"

expect "--fail-nth 3 fails the third call only" "3" --fail-nth 3 "$PROG"
if grep -qx '3 calloc 64 FAIL ENOMEM' "$TMP/out" && grep -q 'failed allocations: 1 (malloc family 1, mmap family 0);.* injected 1$' "$TMP/err"; then
    ok "--fail-nth 3: ENOMEM, counted as injected in the summary"
else
    bad "--fail-nth 3: ENOMEM, counted as injected in the summary"
fi
expect "--fail-nth 2,5,11 (an mmap among them)" "2 5 11" --fail-nth 2,5,11 "$PROG"
grep -qx '5 mmap 65536 FAIL ENOMEM' "$TMP/out" && ok "a failed mmap: MAP_FAILED, ENOMEM" || bad "a failed mmap: MAP_FAILED, ENOMEM"
expect "--fail-every 4" "4 8 12" --fail-every 4 "$PROG"
expect "a forked child counts from 1 (its parent made 5 calls before)" "3" --fail-nth 3 "$PROG" fork
expect "CEBOX_FAIL_EVERY in the environment" "5 10" env CEBOX_FAIL_EVERY=5 "$PROG"

first=$(failed --fail-probability 0.5 --seed 3 "$PROG")
second=$(failed --fail-probability 0.5 --seed 3 "$PROG")
other=$(failed --fail-probability 0.5 --seed 4 "$PROG")
if [ -n "$first" ] && [ "$first" = "$second" ] && [ "$first" != "$other" ] && [ "$first" != "1 2 3 4 5 6 7 8 9 10 11 12" ]; then
    ok "--seed: the same seed fails the same calls ($first), another seed others ($other)"
else
    bad "--seed: '$first', then '$second'; seed 4: '$other'"
fi
expect "--fail-probability 1 fails every call" "1 2 3 4 5 6 7 8 9 10 11 12" --fail-probability 1 "$PROG"

expect "--fail-size-min 100000" "6 10" --fail-size-min 100000 "$PROG"
expect "--fail-size-max 32" "1 2 9" --fail-size-max 32 "$PROG"
expect "size window with --fail-nth 2 (counted among the calls the window lets through)" "9" \
    --fail-size-max 32 --fail-nth 3 "$PROG"
expect "--fail-until 1000: all inside the window" "1 2 3 4 5 6 7 8 9 10 11 12" --fail-until 1000 "$PROG"
expect "--fail-after 1000: none yet" "" --fail-after 1000 "$PROG"

expect "--fail-in parse_config (a function of the program)" "7 8" --fail-in parse_config "$PROG"
expect "--fail-in 'parse_*' --fail-nth 2" "8" --fail-in 'parse_*' --fail-nth 2 "$PROG"
expect "--fail-in a module's file name" "1 2 3 4 5 6 7 8 9 10 11 12" --fail-in 'faults' "$PROG"
expect "--fail-in a name in no stack" "" --fail-in 'no_such_function*' "$PROG"

expect "--fail-state low under --state low" "1 2 3 4 5 6 7 8 9 10 11 12" --state low --fail-state low "$PROG"
expect "--fail-state low in normal memory" "" --fail-state low "$PROG"
# In low and limited memory some calls fail by themselves (CE's commit rule):
# the injected ones come on top of those.
natural=$(failed --state low "$PROG")
expect "--fail-state limited --fail-nth 1 under --state low (a worse state)" "1 $natural" \
    --state low --fail-state limited --fail-nth 1 "$PROG"
natural=$(failed --thresholds ppc --state limited "$PROG")
expect "--fail-state low under --state limited (a better state): only CE's own failures" "$natural" \
    --thresholds ppc --state limited --fail-state low "$PROG"

F="$TMP/stacks"
got=$(failed --fail-once-per-stack "$F" "$PROG" half)
[ "$got" = "1 2 3 4 5 6" ] && ok "--fail-once-per-stack: a first run fails each stack it meets" || bad "--fail-once-per-stack, first run: '$got'"
got=$(failed --fail-once-per-stack "$F" "$PROG")
[ "$got" = "7 8 9 10 11" ] && ok "--fail-once-per-stack: the second run fails only the new stacks (12 repeats 11's)" \
    || bad "--fail-once-per-stack, second run: '$got'"
got=$(failed --fail-once-per-stack "$F" "$PROG")
[ -z "$got" ] && [ "$(wc -l < "$F")" -eq 11 ] && ok "--fail-once-per-stack: a third run fails nothing; one line per stack" \
    || bad "--fail-once-per-stack, third run: '$got', $(wc -l < "$F") lines"

"$CEBOX" run --fail-once-per-stack "$TMP/no/such/dir" "$PROG" > "$TMP/out" 2> "$TMP/err"
rc=$?
[ "$rc" -eq 2 ] && [ ! -s "$TMP/out" ] && [ "$(wc -l < "$TMP/err")" -eq 1 ] && grep -q 'cannot open .*No such file or directory' "$TMP/err" \
    && ok "--fail-once-per-stack: a file that cannot be opened stops the program (exit 2, one line)" \
    || bad "--fail-once-per-stack: a file that cannot be opened: exit $rc"
ABS=$(cd "$B" && pwd)
(cd "$TMP" && "$ABS/cebox" run --quiet --fail-once-per-stack relative "$ABS/tests/programs/faults" half chdir > /dev/null 2>&1)
[ "$(wc -l < "$TMP/relative")" -eq 6 ] && ok "--fail-once-per-stack: a relative path is in the directory of the start, after the program's chdir" \
    || bad "--fail-once-per-stack: a relative path"

P="$TMP/parallel"
for i in 1 2 3 4; do
    "$CEBOX" run --quiet --fail-once-per-stack "$P" "$PROG" slow > "$TMP/par$i" 2>&1 &
done
wait
total=$(cat "$TMP/par1" "$TMP/par2" "$TMP/par3" "$TMP/par4" | grep -c ' FAIL ')
[ "$total" -eq 11 ] && [ "$(wc -l < "$P")" -eq 11 ] && ok "--fail-once-per-stack: four parallel runs fail each stack once in all" \
    || bad "--fail-once-per-stack in parallel: $total failures, $(wc -l < "$P") lines"

# A program linked with libcebox: only its Win32-named calls reach cebox.
W="$B/tests/programs/faults_winapi"
k=0
for api in VirtualAlloc HeapCreate HeapAlloc HeapReAlloc LocalAlloc LocalReAlloc; do
    k=$((k + 1))
    CEBOX_QUIET=yes CEBOX_FAIL_NTH=$k "$W" > "$TMP/out" 2> "$TMP/err"
    if grep -qx "$k $api FAIL 8" "$TMP/out" && [ "$(grep -c ' FAIL ' "$TMP/out")" -eq 1 ] && [ "$(wc -l < "$TMP/out")" -eq 6 ]; then
        ok "linked program: $api fails with ERROR_NOT_ENOUGH_MEMORY, nothing else"
    else
        bad "linked program: $api (CEBOX_FAIL_NTH=$k)"
    fi
done

mkdir "$TMP/o"
"$CEBOX" run --quiet --out "$TMP/o" --fail-nth 7,12 "$PROG" > "$TMP/out" 2> "$TMP/err"
if "$CEBOX" report --format json "$TMP/o" > "$TMP/json" 2>> "$TMP/err" && python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
(p,) = doc["processes"]
assert p["summary"]["injected"] == 2 and p["summary"]["failed"] == 2, p["summary"]
sites = p["oom"]
assert sum(s["count"] for s in sites) == 2, sites
for s in sites:
    assert s["reasons"] == ["injected"] and s["api"] == "malloc", s
    names = [f.get("function") for f in s["stack"]]
    assert "main" in names, names
assert any("parse_config" in [f.get("function") for f in s["stack"]] for s in sites)
' "$TMP/json" 2>> "$TMP/err"; then
    ok "cebox report --format json: reason injected, with their stacks"
else
    bad "cebox report --format json: reason injected, with their stacks"
fi

for bad_value in "fail-nth 0" "fail-nth 3,3" "fail-nth x" "fail-every 0" "fail-probability 1.5" \
    "fail-probability 0.1234567890" "seed -1" "fail-size-min 1X" "fail-size-max ''" "fail-after 86401" \
    "fail-until 1.5.2" "fail-in ''" "fail-state dire" "fail-once-per-stack ''"; do
    eval "set -- --$bad_value"
    "$CEBOX" run "$@" "$PROG" > "$TMP/out" 2> "$TMP/err"
    rc=$?
    if [ "$rc" -eq 2 ] && [ "$(wc -l < "$TMP/err")" -eq 1 ] && grep -q "^cebox: $1: CEBOX_.* is not valid; accepted: " "$TMP/err" && [ ! -s "$TMP/out" ]; then
        ok "--$bad_value refused (exit 2, one line)"
    else
        bad "--$bad_value: exit $rc"
    fi
done

finish
