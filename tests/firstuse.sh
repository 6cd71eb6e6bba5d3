#!/bin/sh
# firstuse.sh - what a new user meets when following the README and the man
# page: which process is boxed (--no-follow behind a wrapper, --only), which
# summaries are shown (--summaries), what is refused before anything runs
# (--out that is no writable directory), several runs in one --out
# directory, fractions of seconds in a state schedule, `cebox state` with the
# pid of `cebox run`, and each command's own help.
set -u
. "${top_srcdir:-.}/tests/testlib.sh"
CEBOX="$BUILD_ABS/cebox"
P="$BUILD_ABS/tests/programs"
BAD_SHOW="$TMP/out $TMP/err"

# ---- refused before running: --out that is a file, or not writable ----
: > "$TMP/afile"
rm -f "$TMP/ran"
run "$CEBOX" run --out "$TMP/afile" sh -c "touch '$TMP/ran'"
if [ $? -eq 2 ] && [ ! -e "$TMP/ran" ] && hasF "cebox: --out $TMP/afile: Not a directory" "$TMP/err" &&
    [ "$(wc -l < "$TMP/err")" -eq 1 ]; then
    ok "--out naming a file is refused before running (one line, exit 2)"
else bad "--out naming a file is refused before running (one line, exit 2)"; fi
# A directory nobody can write into (root writes anywhere, but not in sysfs).
if [ "$(id -u)" -eq 0 ]; then nowrite=/sys/kernel; else nowrite="$TMP/ro"; mkdir "$nowrite"; chmod 555 "$nowrite"; fi
run "$CEBOX" run --out "$nowrite" sh -c "touch '$TMP/ran'"
if [ $? -eq 2 ] && [ ! -e "$TMP/ran" ] && hasF "cebox: --out $nowrite: Permission denied" "$TMP/err"; then
    ok "--out naming an unwritable directory is refused before running"
else bad "--out naming an unwritable directory is refused before running"; fi

# ---- the session log does not look like a process log ----
run "$CEBOX" run --quiet --out "$TMP/o1" --state-schedule 0s:low "$P/crash"
if [ -s "$TMP/o1/cebox.session" ] && [ ! -e "$TMP/o1/cebox-session.log" ]; then
    ok "the session's lines go to DIR/cebox.session"
else bad "the session's lines go to DIR/cebox.session"; ls "$TMP/o1" | sed 's/^/#   /'; fi
run "$CEBOX" report "$TMP"/o1/*.log
if [ $? -eq 0 ] && ! has "damaged" "$TMP/err"; then ok "cebox report DIR/*.log reads only process logs"; else bad "cebox report DIR/*.log reads only process logs"; fi
run "$CEBOX" report "$TMP/o1/cebox.session"
if [ $? -eq 2 ] && hasF "is the session's event lines of cebox run" "$TMP/err" && ! has "damaged" "$TMP/err"; then
    ok "cebox report names a session log given by hand"
else bad "cebox report names a session log given by hand"; fi

# ---- two runs into one --out directory: told apart, grouped by run ----
"$CEBOX" run --quiet --out "$TMP/runs" "$P/forkexec" 2 > /dev/null 2>&1
"$CEBOX" run --quiet --slot-size 1M --out "$TMP/runs" "$P/hog" 2000 > /dev/null 2>&1
hogpid=$(ls "$TMP/runs" | sed -n 's/^cebox-\([0-9]*\)\.log$/\1/p' | sort -n | tail -1)
run "$CEBOX" report "$TMP/runs"
if [ $? -eq 0 ] && [ "$(sed -n 1p "$TMP/out")" = "2 runs in $TMP/runs" ] &&
    [ "$(grep '^=== run \|^== pid ' "$TMP/out" | sed 's/^\(=== run [0-9] of 2\).*, \([0-9]*\) process.*/\1 \2/; s/^== pid [0-9]*: \([^ ]*\).*/\1/' | tr '\n' ' ')" = \
      "=== run 1 of 2 2 $P/forkexec $P/forkexec === run 2 of 2 1 $P/hog " ]; then
    ok "cebox report: '2 runs in DIR', each run's processes under it, in order"
else bad "cebox report: '2 runs in DIR', each run's processes under it, in order"; fi
run "$CEBOX" report --format json "$TMP/runs"
if python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
runs = [p["run"] for p in d["processes"]]
sys.exit(not (runs == [1, 1, 2] and [r["processes"] for r in d["runs"]] == [2, 1] and d["runs"][0]["session"] != d["runs"][1]["session"]))' "$TMP/out"; then
    ok "cebox report --format json: each process's run, and the runs"
else bad "cebox report --format json: each process's run, and the runs"; fi
run "$CEBOX" report --failed-only "$TMP/runs"
if [ $? -eq 0 ] && [ "$(grep -c '^== pid ' "$TMP/out")" -eq 1 ] && has "^== pid $hogpid: .*hog 2000" "$TMP/out"; then
    ok "cebox report --failed-only: only the process with failures"
else bad "cebox report --failed-only: only the process with failures"; fi
run "$CEBOX" report --pid "$hogpid" --format folded "$TMP/runs"
if [ $? -eq 0 ] && [ -s "$TMP/out" ] && ! grep -q forkexec "$TMP/out"; then ok "cebox report --pid N: that process only"; else bad "cebox report --pid N: that process only"; fi
run "$CEBOX" report --pid 1 "$TMP/runs"
if [ $? -eq 2 ] && hasF "no process with the pids given" "$TMP/err"; then ok "cebox report --pid of no process: said, exit 2"; else bad "cebox report --pid of no process: said, exit 2"; fi
run "$CEBOX" report "$TMP/o1"
if [ $? -eq 0 ] && ! has "runs in\|^=== run" "$TMP/out"; then ok "one run: no run headings"; else bad "one run: no run headings"; fi

# ---- fractions of seconds in a state schedule ----
run "$CEBOX" settings --state-schedule 0.5s:low,1.25s:normal
if [ $? -eq 0 ] && hasF "CEBOX_STATE_SCHEDULE=0.5s:low,1.25s:normal" "$TMP/out"; then
    ok "--state-schedule takes fractions of seconds"
else bad "--state-schedule takes fractions of seconds"; fi
run "$CEBOX" settings --state-schedule 0.0005s:low
if [ $? -eq 2 ] && hasF "milliseconds" "$TMP/err"; then ok "more than millisecond precision is refused"; else bad "more than millisecond precision is refused"; fi
run "$CEBOX" settings --state-schedule 0.5s:low,0.500s:normal
[ $? -eq 2 ] && ok "0.5s and 0.500s are the same time (not increasing)" || bad "0.5s and 0.500s are the same time (not increasing)"
run "$CEBOX" run --out "$TMP/frac" --state-schedule 0.3s:low "$P/statewatch" 2 3 "$TMP/pid"
at=$(sed -n 's/^cebox: \[ *\([0-9.]*\) s\] schedule: state low$/\1/p' "$TMP/frac/cebox.session")
if [ -n "$at" ] && awk "BEGIN { exit !($at >= 0.3 && $at < 0.9) }"; then
    ok "a 0.3 s step is applied at 0.3 s (at $at s)"
else bad "a 0.3 s step is applied at 0.3 s (at '$at' s)"; fi

# ---- cebox state with the pid of cebox run, and with a pid that does not exist ----
rm -f "$TMP/pid"
"$CEBOX" run --verbose --out "$TMP/st" "$P/statewatch" 3 8 "$TMP/pid" > "$TMP/st.out" 2> "$TMP/st.err" &
runner=$!
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do [ -s "$TMP/pid" ] && break; sleep 0.2; done
"$CEBOX" state "$runner" critical 2> "$TMP/err"
forced=$?
wait $runner
waited=$?
if [ $forced -eq 0 ] && [ $waited -eq 0 ]; then ok "cebox state PID-of-cebox-run critical reaches the program"; else bad "cebox state PID-of-cebox-run critical reaches the program"; fi
session=$(sed -n 's/^cebox: session \([^ ]*\) .*/\1/p' "$TMP/st.err")
if [ -n "$session" ] && grep -qF "session $session" "$TMP/st/cebox.session"; then
    ok "--verbose prints the session file, which the --out directory keeps too"
else bad "--verbose prints the session file, which the --out directory keeps too"; sed 's/^/#   /' "$TMP/st.err"; fi
sleep 30 & gone=$!; kill $gone; wait $gone 2> /dev/null
run "$CEBOX" state "$gone" low
if [ $? -eq 1 ] && hasF "cebox: process $gone: no such process" "$TMP/err"; then ok "a pid that does not exist: no such process"; else bad "a pid that does not exist: no such process"; fi
run "$CEBOX" state $$ low
if [ $? -eq 1 ] && hasF "is not running under cebox run" "$TMP/err"; then ok "a pid outside any run is named so"; else bad "a pid outside any run is named so"; fi

# ---- --no-follow behind a wrapper: the program that ran outside is named ----
run "$CEBOX" run --no-follow env sh -c 'exec /bin/sleep 0.3'
if [ $? -eq 0 ] && has "^cebox: pid [0-9]* exec'd /usr/bin/sleep, which ran outside the box" "$TMP/err"; then
    ok "--no-follow: a wrapper's exec is named at the end"
else bad "--no-follow: a wrapper's exec is named at the end"; fi
run "$CEBOX" run --no-follow env /bin/true
if [ $? -eq 0 ] && has "^cebox: pid [0-9]* exec'd \(/usr/bin/\)\{0,1\}true, which ran outside the box" "$TMP/err"; then
    ok "--no-follow: an exec'd program that ends at once is named too"
else bad "--no-follow: an exec'd program that ends at once is named too"; fi
printf '#!/bin/sh\nexec /usr/bin/python3 "$@"\n' > "$TMP/python3" && chmod +x "$TMP/python3"
run env PATH="$TMP:$PATH" "$CEBOX" run --no-follow python3 -c 'import time; time.sleep(0.2); print(42)'
if [ $? -eq 0 ] && hasF 42 "$TMP/out" && has "^cebox: pid [0-9]* exec'd /usr/bin/python3[.0-9]*, which ran outside the box" "$TMP/err"; then
    ok "--no-follow: a shim script in front of python3 (as pyenv's) is named"
else bad "--no-follow: a shim script in front of python3 (as pyenv's) is named"; fi
silent=0
for prog in "$P/forkexec 2" "$P/crash segv" "$P/crash exit 3"; do
    run "$CEBOX" run --no-follow $prog
    has "exec'd" "$TMP/err" && silent=1
done
run "$CEBOX" run --quiet --no-follow env /bin/true
[ -s "$TMP/err" ] && silent=1
[ $silent -eq 0 ] && ok "--no-follow: no word when the first program did not exec (fork+exec, crash, exit), nor with --quiet" ||
    bad "--no-follow: no word when the first program did not exec (fork+exec, crash, exit), nor with --quiet"

# ---- --only: box the programs that match, pass cebox on through the others ----
run "$CEBOX" run --only hog --out "$TMP/only" sh -c "'$P/forkexec' 1; /bin/true; '$P/hog' 100"
if [ $? -eq 0 ] && hasF "level 1: outside the box" "$TMP/out" && [ "$(grep -c '^cebox: pid ' "$TMP/err")" -eq 1 ] &&
    has "^cebox: pid [0-9]* (.*hog 100)" "$TMP/err" && [ "$(ls "$TMP/only" | grep -c '^cebox-[0-9]*\.log$')" -eq 1 ]; then
    ok "--only hog: only hog is boxed (one summary, one log); the shell and the others run unboxed"
else bad "--only hog: only hog is boxed (one summary, one log); the shell and the others run unboxed"; fi
run "$CEBOX" run --only forkexec env "$P/forkexec" 2
if [ $? -eq 0 ] && [ "$(grep -c 'in the box' "$TMP/out")" -eq 2 ]; then
    ok "--only: an unboxed wrapper (env) passes cebox on to the program it runs"
else bad "--only: an unboxed wrapper (env) passes cebox on to the program it runs"; fi
run "$CEBOX" run --only nomatch --only '*/programs/h?g' "$P/hog" 10
if [ $? -eq 0 ] && has "^cebox: pid [0-9]* (.*hog 10)" "$TMP/err"; then
    ok "--only repeated, a glob against the full path"
else bad "--only repeated, a glob against the full path"; fi
run "$CEBOX" run --quiet --only nomatch sh -c 'cat /proc/$$/maps'
rc=$?
unboxed=failed
[ $rc -eq 0 ] && unboxed=$(grep -c cebox-session "$TMP/out")
run "$CEBOX" run --quiet sh -c 'cat /proc/$$/maps'
boxed=$(grep -c cebox-session "$TMP/out")
if [ "$unboxed" = 0 ] && [ "$boxed" -ge 1 ]; then ok "an unboxed process makes nothing of cebox's (no session, no slot)"; else
    bad "an unboxed process makes nothing of cebox's (unboxed $unboxed, boxed $boxed)"; fi
for how in "--only nomatch" ""; do
    run "$CEBOX" run --quiet $how "$P/libc_api"
    if [ $? -eq 0 ] && hasF "api ok" "$TMP/out"; then ok "every interposed function works ${how:-boxed}"; else bad "every interposed function works ${how:-boxed}"; fi
done
run "$CEBOX" run --only nomatch python3 -c 'import json; print(json.dumps([1, {"a": 2}]))'
if [ $? -eq 0 ] && hasF '[1, {"a": 2}]' "$TMP/out" && [ ! -s "$TMP/err" ]; then ok "a real program unboxed runs as without cebox"; else bad "a real program unboxed runs as without cebox"; fi

# ---- which summaries: all, failures (failed allocations or blocks left), none ----
# The shell (it never frees its variables) and hog leave blocks; true
# leaves none.
run "$CEBOX" run --summaries failures sh -c "/bin/true; '$P/hog' 400; /bin/true"
if [ $? -eq 0 ] && [ "$(grep -c '^cebox: pid ' "$TMP/err")" -eq 2 ] && has "^cebox: pid [0-9]* (.*hog 400)" "$TMP/err" &&
    has "^cebox: pid [0-9]* (sh -c " "$TMP/err" && ! has "(/bin/true)" "$TMP/err" && has "still allocated" "$TMP/err"; then
    ok "--summaries failures: only the processes that left blocks allocated"
else bad "--summaries failures: only the processes that left blocks allocated"; fi
run "$CEBOX" run --summaries failures --slot-size 1M "$P/hog" 2000
if [ $? -eq 1 ] && has "failed allocations: [1-9]" "$TMP/err"; then ok "--summaries failures: a process whose allocations failed"; else bad "--summaries failures: a process whose allocations failed"; fi
run "$CEBOX" run --summaries none --out "$TMP/none" "$P/hog" 400
if [ $? -eq 0 ] && [ ! -s "$TMP/err" ] && [ -n "$(ls "$TMP"/none/cebox-*.summary)" ]; then
    ok "--summaries none: nothing on stderr, the summary files still written"
else bad "--summaries none: nothing on stderr, the summary files still written"; fi
run "$CEBOX" run "$P/hog" 400
[ "$(grep -c '^cebox: pid ' "$TMP/err")" -eq 1 ] && ok "--summaries all by default" || bad "--summaries all by default"

# ---- each command's own help ----
for cmd in run state report settings demo; do
    run "$CEBOX" "$cmd" --help
    if [ $? -eq 0 ] && has "^Usage: cebox $cmd" "$TMP/out" && has "^Example" "$TMP/out" && ! has "^Commands:" "$TMP/out"; then
        ok "cebox $cmd --help: its own usage and an example, exit 0"
    else bad "cebox $cmd --help: its own usage and an example, exit 0"; fi
done
run "$CEBOX" run --help
if has "\-\-slot-size" "$TMP/out"; then ok "cebox run --help lists the settings"; else bad "cebox run --help lists the settings"; fi
run "$CEBOX" state --help
if has "\-\-slot-size" "$TMP/out"; then bad "cebox state --help lists only what applies"; else ok "cebox state --help lists only what applies"; fi

finish
