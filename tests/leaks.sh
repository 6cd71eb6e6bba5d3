#!/bin/sh
# leaks.sh - `cebox run --leaks`: every heap block's allocation stack, and at
# the end of each process the blocks never freed, classified and grouped by
# stack (tests/programs/leaky.c leaks known sizes at known functions):
#  - a record lost with its member: definite 16 + indirect 40; a global:
#    reachable; an interior pointer only: possible; four threads at one
#    site: one site of 4 blocks; a block held by a thread still running
#    (stopped and scanned at exit): reachable; printf only: nothing (its stdio buffer is
#    suppressed); a forked child: its own leak in its own log;
#  - a daemon killed by SIGTERM: its own handler ran, its leaks and summary
#    are recorded, its exit is signal 15; a crash: signal 11, the fault
#    address and the crash stack, then death by SIGSEGV as before; SIGTERM
#    amid allocations in three threads (two of them failing, logged): no
#    hang, the ending recorded;
#  - bytes as CE charges them; the exit summary's lines; exit codes in the
#    JSON; --suppressions; --error-exitcode; nothing tracked without --leaks;
#  - Win32 heap items (HeapAlloc, HeapReAlloc, LocalAlloc) and VirtualAlloc
#    reservations of a linked program, a destroyed heap's items and a
#    released reservation forgotten;
#  - the definite and indirect totals are memcheck's (when valgrind is here).
set -u
B="${top_builddir:-.}"
CEBOX="$B/cebox"
P="$B/tests/programs"
. "${top_srcdir:-.}/tests/testlib.sh"

# run MODE [cebox options...]: the mode's logs in $TMP/MODE, stderr in
# $TMP/MODE.err, the exit status in $TMP/MODE.status
run() {
    mode=$1
    shift
    mkdir -p "$TMP/$mode"
    "$CEBOX" run --leaks --out "$TMP/$mode" "$@" "$P/leaky" "$mode" > "$TMP/$mode.out" 2> "$TMP/$mode.err"
    echo $? > "$TMP/$mode.status"
    "$CEBOX" report --format json "$TMP/$mode" > "$TMP/$mode.json"
}

# expect NAME MODE PYTHON: the check (a Python expression over `procs`, the
# report's processes, `leaks(p)` its leak sites as (kind, bytes, charged,
# blocks, innermost function) tuples, `totals(p)`) holds
expect() {
    name=$1 mode=$2 expr=$3
    if python3 - "$TMP/$mode.json" "$expr" > "$TMP/why" 2>&1 <<'PY'
import json, sys
procs = json.load(open(sys.argv[1]))["processes"]
def fn(stack, i=0):
    return stack[i]["function"] if len(stack) > i else None
def leaks(p):
    return sorted((l["kind"], l["bytes"], l["charged_bytes"], l["blocks"], fn(l["stack"])) for l in p["leaks"] or [])
def totals(p):
    return {k: (v["bytes"], v["blocks"]) for k, v in p["leak_totals"].items()}
ok = eval("(" + sys.argv[2] + ")")
if not ok:
    print(json.dumps([{k: p[k] for k in ("pid", "exit", "leak_totals")} | {"leaks": leaks(p)} for p in procs]))
sys.exit(0 if ok else 1)
PY
    then ok "$name"; else bad "$name"; sed 's/^/#   /' "$TMP/why" | head -5; fi
}

run struct
expect "a record lost with its member: definite 16 (leak_record) and indirect 40 (name_record), exactly" struct \
    'leaks(procs[0]) == [("definite", 16, 32, 1, "leak_record"), ("indirect", 40, 48, 1, "name_record")]'
expect "the indirect block's stack goes on through the record's allocator to main" struct \
    '[fn(l["stack"], 1) for l in procs[0]["leaks"] if l["kind"] == "indirect"] == ["leak_record"] and
     [fn(l["stack"], 2) for l in procs[0]["leaks"] if l["kind"] == "indirect"] == ["main"]'
expect "leak_totals: definite 16/1, indirect 40/1, nothing possible or reachable" struct \
    'all(totals(procs[0])[k] == v for k, v in {"definite": (16, 1), "indirect": (40, 1), "possible": (0, 0), "reachable": (0, 0)}.items())'
expect "main returned 0: exit {\"code\": 0}" struct 'procs[0]["exit"] == {"code": 0}'
# (the program's functions are static: the summary, which has only the
# dynamic symbols, names their module and offset)
if grep -q "^cebox:   definitely lost: 16 bytes in 1 block; most at leaky+0x" "$TMP/struct.err" &&
    grep -q "^cebox:   indirectly lost: 40 bytes in 1 block; most at leaky+0x" "$TMP/struct.err"; then
    ok "the exit summary has a line per kind with its top site"
else
    bad "the exit summary has a line per kind with its top site"; sed 's/^/#   /' "$TMP/struct.err"
fi
# ... and says where the whole stacks are: the report of the log it names
# has the static function the summary could only give as an offset
log=$(sed -n 's/^cebox:   leak stacks in full (static functions, files and lines): cebox report //p' "$TMP/struct.err")
if [ -n "$log" ] && [ -f "$log" ] && "$CEBOX" report "$log" | grep -q "leak_record at .*leaky.c:[0-9]*$"; then
    ok "the exit summary names the log whose report has the static functions"
else
    bad "the exit summary names the log whose report has the static functions"; sed 's/^/#   /' "$TMP/struct.err"
fi
"$CEBOX" report "$TMP/struct" > "$TMP/struct.text"
if grep -q "^leak 1: indirectly lost, 40 bytes in 1 block (charged 48 bytes)" "$TMP/struct.text" &&
    grep -q "name_record at .*leaky.c:[0-9]*$" "$TMP/struct.text"; then
    ok "cebox report text: sites by bytes, symbolized with file:line"
else
    bad "cebox report text: sites by bytes, symbolized with file:line"; sed 's/^/#   /' "$TMP/struct.text" | head -20
fi

run global
expect "a block kept in a global: still reachable, 100 bytes at keep_global" global \
    'leaks(procs[0]) == [("reachable", 100, 112, 1, "keep_global")]'
run interior
expect "a block known only by an interior pointer: possibly lost, 200 bytes at keep_interior" interior \
    'leaks(procs[0]) == [("possible", 200, 208, 1, "keep_interior")]'
run threads
expect "four threads losing 32 bytes each at one site: one site of 128 bytes in 4 blocks" threads \
    'leaks(procs[0]) == [("definite", 128, 192, 4, "thread_leak")] and totals(procs[0])["definite"] == (128, 4)'
run worker
expect "a block only a running thread points to (its stack or registers) at exit: still reachable" worker \
    'leaks(procs[0]) == [("reachable", 64, 80, 1, "hold_block")]'
run printf
expect "printf only: no leak (its stdio buffer counted as suppressed)" printf \
    'leaks(procs[0]) == [] and totals(procs[0])["suppressed"][1] >= 1 and
     all(totals(procs[0])[k] == (0, 0) for k in ("definite", "indirect", "possible", "reachable"))'
# The exit summary applies the same default suppressions: its leak lines
# are the report's, and none is a kind of leak.
leak_lines='^cebox:   \(suppressed\|definitely lost\|indirectly lost\|possibly lost\|still reachable\|leaks\):'
grep "$leak_lines" "$TMP/printf.err" > "$TMP/printf.summary"
"$CEBOX" report "$TMP/printf" | grep "$leak_lines" > "$TMP/printf.reported"
if grep -q "^cebox:   leaks: none$" "$TMP/printf.summary" && grep -q "^cebox:   suppressed: " "$TMP/printf.summary" &&
    ! grep -q "lost\|reachable" "$TMP/printf.summary" && cmp -s "$TMP/printf.summary" "$TMP/printf.reported"; then
    ok "printf only: the exit summary says nothing leaked (stdio's buffer suppressed), as the report does"
else
    bad "printf only: the exit summary says nothing leaked (stdio's buffer suppressed), as the report does"
    sed 's/^/#   summary: /' "$TMP/printf.summary"; sed 's/^/#   report: /' "$TMP/printf.reported"
fi
run fork
expect "a forked child: its 56 bytes at child_leak in its own log; the parent loses nothing" fork \
    'sorted((p["forked"], leaks(p)) for p in procs) == [(False, []), (True, [("definite", 56, 64, 1, "child_leak")])]'

# ---- a daemon killed by SIGTERM, with its own handler

# killed MODE SIGNAL: runs the mode until it says "ready", sends it SIGNAL;
# its pid in $dpid, cebox run's status in $TMP/MODE.status
killed() {
    rm -rf "$TMP/$1" "$TMP/$1.out"
    mkdir -p "$TMP/$1"
    "$CEBOX" run --leaks --out "$TMP/$1" "$P/leaky" "$1" > "$TMP/$1.out" 2> "$TMP/$1.err" &
    runner=$!
    i=0
    while ! grep -q ready "$TMP/$1.out" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    dpid=
    for f in "$TMP/$1"/cebox-[0-9]*.log; do dpid=$(basename "$f" .log | sed 's/cebox-//'); done
    if [ -n "$dpid" ]; then kill -"$2" "$dpid"; else kill -KILL "$runner"; fi
    i=0 # a hang (a lock the signal's thread held) is killed after 20 s
    while kill -0 "$runner" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
    kill -0 "$runner" 2>/dev/null && { echo "# $1 hung"; kill -KILL "$dpid" "$runner"; }
    wait $runner
    echo $? > "$TMP/$1.status"
    "$CEBOX" report --format json "$TMP/$1" > "$TMP/$1.json"
}

killed daemon TERM
if [ "$(cat "$TMP/daemon.status")" -eq 143 ] && grep -q "handler ran" "$TMP/daemon.out"; then
    ok "the daemon's own SIGTERM handler ran, and it died of SIGTERM (143)"
else
    bad "the daemon's own SIGTERM handler ran, and it died of SIGTERM (status $(cat "$TMP/daemon.status"))"
fi
expect "the killed daemon: exit {\"signal\": 15}, its 24 bytes lost at daemon_leak" daemon \
    'procs[0]["exit"] == {"signal": 15} and leaks(procs[0]) == [("definite", 24, 32, 1, "daemon_leak")]'
expect "the killed daemon has its summary" daemon 'procs[0]["summary"] is not None'
if grep -q "^cebox:   killed by signal 15 (SIGTERM)" "$TMP/daemon/cebox-$dpid.summary" 2>/dev/null; then
    ok "its summary file says how it ended"
else
    bad "its summary file says how it ended"
fi

killed sleeper HUP
if [ "$(cat "$TMP/sleeper.status")" -eq 129 ]; then ok "a program with no handler still dies of SIGHUP (129)"; else bad "a program with no handler still dies of SIGHUP (status $(cat "$TMP/sleeper.status"))"; fi
expect "killed by SIGHUP: exit {\"signal\": 1}, its 8 bytes lost at sleeper_leak" sleeper \
    'procs[0]["exit"] == {"signal": 1} and leaks(procs[0]) == [("definite", 8, 16, 1, "sleeper_leak")]'

# three threads allocating without pause: SIGTERM lands inside cebox (its
# locks possibly held): no hang, the ending still recorded; with two of
# them failing without pause, another thread most often holds the log's
# lock when it lands (the ending, once only tried for it, was lost in about
# 4 runs of 10)
for round in 1 2 3; do
    for mode in churn failchurn; do
        killed $mode TERM
        expect "SIGTERM amid allocations, $mode (round $round): dies of it (143), no hang, its ending recorded" $mode \
            "$(cat "$TMP/$mode.status") == 143 and procs[0][\"exit\"] == {\"signal\": 15}"
    done
done

# ---- the program's own handlers, as it set them
run siginfo
if [ "$(cat "$TMP/siginfo.status")" -eq 5 ] &&
    grep -q "^handler got signal 2, si_code user; sigaction reports the program's handler: yes" "$TMP/siginfo.out" &&
    grep -q "^signal returned the previous handler: yes; ignored SIGINT survived" "$TMP/siginfo.out"; then
    ok "an SA_SIGINFO handler runs with its siginfo and returns; sigaction and signal report the program's actions"
else
    bad "the program's own SIGINT handler (status $(cat "$TMP/siginfo.status"))"; sed 's/^/#   /' "$TMP/siginfo.out"
fi
expect "a handled SIGINT ends nothing: exit {\"code\": 5}" siginfo 'procs[0]["exit"] == {"code": 5}'

# ---- a crash after leaking
run crash
if [ "$(cat "$TMP/crash.status")" -eq 139 ]; then ok "the crash still dies of SIGSEGV (139)"; else bad "the crash still dies of SIGSEGV (status $(cat "$TMP/crash.status"))"; fi
expect "the crash: signal 11, fault address 0x10, crash stack from crash() to main" crash \
    'procs[0]["exit"]["signal"] == 11 and procs[0]["exit"]["fault_address"] == 16 and
     fn(procs[0]["exit"]["stack"]) == "crash" and fn(procs[0]["exit"]["stack"], 1) == "main"'
expect "the crash: its 48 bytes lost at crash_leak" crash 'leaks(procs[0]) == [("definite", 48, 64, 1, "crash_leak")]'

# ---- Win32 heap items (a program linked with libcebox)
mkdir -p "$TMP/winapi"
CEBOX_LEAKS=yes CEBOX_OUT="$TMP/winapi" "$P/leaky_winapi" > /dev/null 2>&1
"$CEBOX" report --format json "$TMP/winapi" > "$TMP/winapi.json"
expect "Win32 heap items: HeapAlloc 100, LocalAlloc 30, HeapReAlloc 70, a VirtualAlloc reservation of 128 KB lost; a destroyed heap's, freed items and a released reservation not" winapi \
    'leaks(procs[0]) == [("definite", 30, 48, 1, "lose_localalloc"), ("definite", 70, 80, 1, "grow_heapalloc"), ("definite", 100, 112, 1, "lose_heapalloc"),
                         ("definite", 131072, 131072, 1, "lose_virtualalloc")]'

# ---- suppressions (matched offline, by function, file or module)
printf '# the record'"'"'s name is known\nleak:name_record\n' > "$TMP/supp"
"$CEBOX" report --format json --suppressions "$TMP/supp" "$TMP/struct" > "$TMP/supp1.json"
expect "--suppressions leak:name_record: the 40 bytes are suppressed, the 16 still definite" supp1 \
    'leaks(procs[0]) == [("definite", 16, 32, 1, "leak_record")] and totals(procs[0])["suppressed"] == (40, 1)'
printf 'leak:leaky.c\n' > "$TMP/supp2"
"$CEBOX" report --format json --suppressions "$TMP/supp2" "$TMP/struct" > "$TMP/supp2.json"
expect "a suppression by source file takes both sites" supp2 'leaks(procs[0]) == []'
printf 'leek:x\n' > "$TMP/supp3"
if "$CEBOX" report --suppressions "$TMP/supp3" "$TMP/struct" > /dev/null 2> "$TMP/err"; then
    bad "a malformed suppression is refused"
else
    grep -q "supp3:1: not a suppression" "$TMP/err" && ok "a malformed suppression is refused, with its line" ||
        bad "a malformed suppression is refused, with its line"
fi

# ---- cebox run --error-exitcode: the logs read at the end of the run
"$CEBOX" run --leaks --quiet --error-exitcode 23 "$P/leaky" struct > /dev/null 2>&1
st=$?
"$CEBOX" run --leaks --quiet --error-exitcode 23 "$P/leaky" global > /dev/null 2>&1
st2=$?
"$CEBOX" run --leaks --quiet --error-exitcode 23 --suppressions "$TMP/supp2" "$P/leaky" struct > /dev/null 2>&1
st3=$?
"$CEBOX" run --leaks --quiet --error-exitcode 23 "$P/leaky" fork > /dev/null 2>&1
st4=$?
if [ "$st" -eq 23 ] && [ "$st2" -eq 0 ] && [ "$st3" -eq 0 ] && [ "$st4" -eq 23 ]; then
    ok "--error-exitcode 23: lost bytes give 23 (a forked child's too); reachable or suppressed ones the program's 0"
else
    bad "--error-exitcode 23: statuses $st $st2 $st3 $st4, expected 23 0 0 23"
fi
if "$CEBOX" run --quiet --error-exitcode 23 "$P/leaky" struct > /dev/null 2> "$TMP/err"; then
    bad "--error-exitcode without --leaks is refused"
else
    grep -q "needs --leaks" "$TMP/err" && ok "--error-exitcode without --leaks is refused" ||
        bad "--error-exitcode without --leaks is refused"
fi

# ---- --error-exitcode without --out: the logs' directory follows TMPDIR, and is removed
mkdir -p "$TMP/tmpd"
TMPDIR="$TMP/tmpd" "$CEBOX" run --leaks --quiet --error-exitcode 23 sh -c 'echo "$CEBOX_OUT"' > "$TMP/tmpd.out" 2>&1
case $(cat "$TMP/tmpd.out") in
"$TMP/tmpd/cebox-leaks-"*)
    if [ -z "$(ls -A "$TMP/tmpd")" ]; then ok "--error-exitcode's log directory is made under TMPDIR and removed"
    else bad "--error-exitcode's log directory under TMPDIR was left: $(ls -A "$TMP/tmpd")"; fi ;;
*) bad "--error-exitcode's log directory is not under TMPDIR: $(cat "$TMP/tmpd.out")" ;;
esac

# ---- without --leaks: nothing tracked
mkdir -p "$TMP/off"
"$CEBOX" run --out "$TMP/off" "$P/leaky" struct > /dev/null 2> "$TMP/off.err"
"$CEBOX" report --format json "$TMP/off" > "$TMP/off.json"
expect "without --leaks: no leak records, but the exit is recorded" off \
    'procs[0]["leaks"] is None and procs[0]["exit"] == {"code": 0}'
if grep -q "lost\|reachable" "$TMP/off.err"; then bad "without --leaks the summary has no leak lines"; else ok "without --leaks the summary has no leak lines"; fi

# ---- memcheck agrees on the definite and indirect totals
if command -v valgrind > /dev/null 2>&1; then
    for mode in struct threads crash; do
        valgrind --leak-check=full "$P/leaky" "$mode" > /dev/null 2> "$TMP/vg" || true
        vdef=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes in \([0-9,]*\) blocks.*/\1 \2/p' "$TMP/vg" | tr -d ,)
        vind=$(sed -n 's/.*indirectly lost: \([0-9,]*\) bytes in \([0-9,]*\) blocks.*/\1 \2/p' "$TMP/vg" | tr -d ,)
        cdef=$(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["processes"][0]["leak_totals"]; print(t["definite"]["bytes"], t["definite"]["blocks"])' "$TMP/$mode.json")
        cind=$(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["processes"][0]["leak_totals"]; print(t["indirect"]["bytes"], t["indirect"]["blocks"])' "$TMP/$mode.json")
        if [ "$vdef" = "$cdef" ] && [ "${vind:-0 0}" = "$cind" ]; then
            ok "$mode: definite ($cdef) and indirect ($cind) as memcheck's"
        else
            bad "$mode: cebox definite $cdef indirect $cind, memcheck definite ${vdef:-?} indirect ${vind:-?}"
        fi
    done
else
    ok "# SKIP valgrind not installed: no comparison with memcheck"
fi

finish
