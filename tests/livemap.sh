#!/bin/sh
# livemap.sh - slot maps beyond failures, and the live view of a running
# program:
#  - tests/programs/holdmap holds two 1 MB blocks side by side (two large
#    heap items) and a 4-block mapping, then frees them and exits:
#    `cebox report` shows its maps at the peak and at exit with their cause
#    and time, in text and JSON, and the two items stay two ("LllL...");
#  - the session log's first line, there before the program starts;
#  - `cebox map` and `cebox status` while it holds them, given its pid, the
#    pid of cebox run, or the session file; a pid that does not exist and
#    one that is not boxed get clear errors; --help for both;
#  - a forked child (holdmap hold fork): its map, published at its fork;
#  - `cebox status` under --leaks (holdmap hold sites): its top live
#    sites with their exact bytes and blocks and symbolized stacks, and
#    without --leaks a line saying they are not tracked.
set -u
B="${top_builddir:-.}"
CEBOX="$B/cebox"
P="$B/tests/programs"
. "${top_srcdir:-.}/tests/testlib.sh"
# The slot starts empty here (--no-occupy): the figures below are those
# of the program's own reservations; tests/occupancy.sh covers the image,
# DLLs and stacks a device would add.

# The session log's first line (the session file) is written before the
# program starts: a program that reads it at once finds it (it once came
# after the program's exec, and a test that read it as soon as holdmap was
# ready found it missing on a loaded machine; head found none in 1 run of
# 4 here).
missed=0
for i in 1 2 3 4 5 6 7 8 9 10; do
    rm -rf "$TMP/first"
    mkdir "$TMP/first"
    "$CEBOX" run --quiet --out "$TMP/first" -- head -n 1 "$TMP/first/cebox.session" >"$TMP/first.out" 2>&1
    grep -q '^cebox: session /[^ ]* (cebox run pid [0-9]*)$' "$TMP/first.out" || missed=$((missed + 1))
done
if [ $missed -eq 0 ]; then
    ok "the session log names the session before the program starts (10 runs)"
else
    bad "the session log names the session before the program starts ($missed of 10 runs found no line)"
fi

D="$TMP/run"
mkdir "$D"
mkfifo "$TMP/in"
"$CEBOX" run --quiet --no-occupy --out "$D" -- "$P/holdmap" hold <"$TMP/in" >"$TMP/prog" 2>&1 &
RUNPID=$!
exec 7>"$TMP/in" # holds the program until it is closed
# Bounded poll for the program's "ready PID" line (at most 20 s).
i=0
while ! grep -q '^ready ' "$TMP/prog" 2>/dev/null && [ $i -lt 400 ] && kill -0 $RUNPID 2>/dev/null; do
    sleep 0.05
    i=$((i + 1))
done
PID=$(sed -n 's/^ready \([0-9]*\)$/\1/p' "$TMP/prog")
SESSION=$(sed -n '1s/^cebox: session \([^ ]*\) .*/\1/p' "$D/cebox.session" 2>/dev/null)
BAD_SHOW="$TMP/out $TMP/err"
if [ -n "$PID" ] && [ -n "$SESSION" ]; then ok "holdmap is ready (pid $PID, session $SESSION)"; else bad "holdmap is ready"; fi

# Two adjacent large items: each starts with a capital.
TWO='-Hhh\(Ll\{16,\}\)\{2\}Cccc'
for target in "$PID" "$RUNPID" "$SESSION"; do
    run "$CEBOX" map "$target"
    if [ $? -eq 0 ] && has "^pid $PID: .*holdmap hold\$" "$TMP/out" && has "^    00000000  $TWO\.*\$" "$TMP/out" &&
        hasF 'a capital starts each reservation' "$TMP/out"; then
        ok "cebox map $target: the live map, the two large items apart"
    else
        bad "cebox map $target"
    fi
done
run "$CEBOX" status "$RUNPID"
if [ $? -eq 0 ] && has "^session $SESSION: memory state normal, device RAM .* free of 64.0 MB\$" "$TMP/out" &&
    has "^  slot: 41 of 511 blocks reserved (peak 41), largest free run 470 blocks" "$TMP/out" &&
    has "^  process heap: 2[01][0-9][0-9.]* KB live" "$TMP/out" && has "^  slot map now:\$" "$TMP/out" &&
    has "^    00000000  $TWO" "$TMP/out" && has '^  live sites: not tracked (run it with --leaks to see them here)$' "$TMP/out" &&
    ! has '^  live site 1:' "$TMP/out"; then
    ok "cebox status: state, free RAM, slot use, largest free run, heap, map; no live sites without --leaks"
else
    bad "cebox status"
fi

exec 7>&- # the program frees its blocks and exits
wait $RUNPID
rc=$?
if [ $rc -eq 0 ]; then ok "holdmap exited 0"; else bad "holdmap exited $rc"; fi

# A forked child: a new member of the session, whose row gets its copy of
# the map at once.
D2="$TMP/fork"
mkdir "$D2"
mkfifo "$TMP/in2"
"$CEBOX" run --quiet --no-occupy -- "$P/holdmap" hold fork <"$TMP/in2" >"$TMP/prog2" 2>&1 &
RUN2=$!
exec 8>"$TMP/in2"
i=0
while ! { grep -q '^ready ' "$TMP/prog2" && grep -q '^child ' "$TMP/prog2"; } 2>/dev/null && [ $i -lt 400 ] &&
    kill -0 $RUN2 2>/dev/null; do
    sleep 0.05
    i=$((i + 1))
done
CHILD=$(sed -n 's/^child \([0-9]*\)$/\1/p' "$TMP/prog2")
run "$CEBOX" map "$RUN2"
if [ -n "$CHILD" ] && [ "$(grep -c "^    00000000  $TWO" "$TMP/out")" -eq 2 ] && has "^pid $CHILD: " "$TMP/out"; then
    ok "cebox map: a forked child's map, published at its fork"
else
    bad "cebox map: a forked child's map"
fi
exec 8>&-
wait $RUN2
rc=$?
if [ $rc -eq 0 ]; then ok "holdmap fork exited 0"; else bad "holdmap fork exited $rc"; fi

# The live sites under --leaks: holdmap's two sites (12 blocks of 1000
# bytes from hold_rows, 3 of 70000 from hold_tables), published after the
# 4096 allocations it makes before it says it is ready.
mkfifo "$TMP/in3"
"$CEBOX" run --quiet --no-occupy --leaks -- "$P/holdmap" hold sites <"$TMP/in3" >"$TMP/prog3" 2>&1 &
RUN3=$!
exec 9>"$TMP/in3"
i=0
while ! grep -q '^ready ' "$TMP/prog3" 2>/dev/null && [ $i -lt 400 ] && kill -0 $RUN3 2>/dev/null; do
    sleep 0.05
    i=$((i + 1))
done
run "$CEBOX" status "$RUN3"
st=$?
BAD_SHOW="$TMP/out $TMP/err"
# A site's line, then its two innermost frames (its function, then main).
site_is() { # FIGURES FUNCTION
    grep -A2 "^  live site [1-8]: $1\$" "$TMP/out" >"$TMP/site"
    has "^    #0  0x[0-9a-f]*  $2 at .*holdmap\.c:[0-9]*\$" "$TMP/site" &&
        has '^    #1  0x[0-9a-f]*  main at .*holdmap\.c:[0-9]*$' "$TMP/site"
}
if [ $st -eq 0 ] && has '^  live sites (--leaks): .* published [0-9.]* s ago after [0-9]* allocations; the [1-8] with most bytes:$' "$TMP/out" &&
    site_is '11.7 KB in 12 blocks (12000 bytes)' hold_rows && site_is '205.1 KB in 3 blocks (210000 bytes)' hold_tables; then
    ok "cebox status --leaks: both sites, exact bytes and blocks, their functions"
else
    bad "cebox status --leaks: the live sites"
fi
# A stack deeper than a row keeps: its 16 innermost frames, then how many more.
grep -A17 '^  live site [1-8]: 333 bytes in 1 block (333 bytes)$' "$TMP/out" >"$TMP/deep"
if has '^    #0  0x[0-9a-f]*  hold_deep at .*holdmap\.c:[0-9]*$' "$TMP/deep" &&
    [ "$(grep -c '^    #[0-9]* *0x[0-9a-f]*  hold_deep at' "$TMP/deep")" -eq 16 ] &&
    has '^    ([0-9]* outer frames not published)$' "$TMP/deep"; then
    ok "cebox status --leaks: a deep stack's 16 innermost frames, the rest counted"
else
    bad "cebox status --leaks: a deep stack"
fi
exec 9>&-
wait $RUN3
rc=$?
if [ $rc -eq 0 ]; then ok "holdmap sites exited 0"; else bad "holdmap sites exited $rc"; fi

# Errors: a pid that does not exist, one not boxed, a file that is no session.
run "$CEBOX" map 999999999
if [ $? -eq 1 ] && hasF "process 999999999: no such process" "$TMP/err"; then ok "map: no such process"; else bad "map: no such process"; fi
sleep 30 </dev/null & LONE=$!
run "$CEBOX" status $LONE
st=$?
kill $LONE 2>/dev/null
if [ $st -eq 1 ] && hasF "process $LONE is not running under cebox run" "$TMP/err"; then ok "status: a pid not boxed"; else bad "status: a pid not boxed"; fi
run "$CEBOX" map "$D/cebox.session"
if [ $? -eq 1 ] && hasF "not a cebox session file" "$TMP/err"; then ok "map: not a session file"; else bad "map: not a session file"; fi
run "$CEBOX" map "$SESSION"
if [ $? -eq 1 ] && hasF "No such file or directory" "$TMP/err"; then ok "map: the session is over"; else bad "map: the session is over"; fi
for c in map status; do
    run "$CEBOX" $c --help
    if [ $? -eq 0 ] && has "^Usage: cebox $c SESSION-FILE|PID" "$TMP/out"; then ok "$c --help"; else bad "$c --help"; fi
done

# The report: the peak's map (both items, the mapping) and the exit's.
"$CEBOX" report "$D" >"$TMP/text" 2>&1
"$CEBOX" report --format json "$D" >"$TMP/json" 2>&1
BAD_SHOW="$TMP/text"
if grep -A1 '^slot at the peak of reserved blocks (0\.[0-9]* s after start):$' "$TMP/text" | has "^    00000000  $TWO" - &&
    grep -A1 '^slot at exit ([0-9.]* s after start):$' "$TMP/text" | has '^    00000000  -Hhh\.*$' -; then
    ok "text: the maps at the peak and at exit"
else
    bad "text: the maps at the peak and at exit"
fi
BAD_SHOW="$TMP/json"
if has '{"t": [0-9.]*, "cause": "peak", "seq": 0, "slot_map": "'"$TWO" "$TMP/json" &&
    has '{"t": [0-9.]*, "cause": "exit", "seq": 0, "slot_map": "-Hhh\.*"}' "$TMP/json"; then
    ok "json: maps with their cause and time"
else
    bad "json: maps with their cause and time"
fi
# Each cebox map and status above recorded its map into the log (--out).
ondemand=$(grep -c '"cause": "on-demand", "seq": 0, "slot_map": "'"$TWO" "$TMP/json")
if [ "$ondemand" -eq 4 ] && has '^slot on demand ([0-9.]* s after start):$' "$TMP/text"; then
    ok "the 4 maps asked for while it ran are in its report"
else
    bad "on-demand maps in the report: $ondemand"
fi
# The peak came before the exit.
tp=$(sed -n 's/.*{"t": \([0-9.]*\), "cause": "peak".*/\1/p' "$TMP/json")
te=$(sed -n 's/.*{"t": \([0-9.]*\), "cause": "exit".*/\1/p' "$TMP/json")
if [ -n "$tp" ] && [ -n "$te" ] && awk "BEGIN { exit !($tp > 0 && $tp <= $te) }"; then ok "the peak ($tp s) before the exit ($te s)"; else bad "peak $tp, exit $te"; fi
finish
