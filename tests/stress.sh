#!/bin/sh
# stress.sh - `cebox stress` campaigns on tests/programs/stress_target: the
# stacks strategy finds exactly its two unchecked sites (a malloc in
# make_label, a realloc in grow_table) as two crash buckets at their lines,
# each confirmed alone, with replay commands that crash there again; no
# crash inside cebox; a hang is caught by --timeout; --strategy nth and
# states; an exec'd child under follow; --out and TMPDIR; usage errors.
set -u
B="${top_builddir:-.}"
S="${top_srcdir:-.}"
CEBOX="$B/cebox"
P="$B/tests/programs/stress_target"
. "${top_srcdir:-.}/tests/testlib.sh"

line_of() { grep -n -- "$1" "$S/tests/programs/stress_target.c" | head -1 | cut -d: -f1; }
LM=$(line_of 'SITE:label-malloc') LC=$(line_of 'SITE:label-crash')
LR=$(line_of 'SITE:table-realloc') LT=$(line_of 'SITE:table-crash')

# Checks a campaign's JSON: $1 file, $2 "stacks"|"nth"|"states", $3 the buckets wanted.
check_json() {
    python3 - "$1" "$2" "$3" "$LM" "$LC" "$LR" "$LT" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
strategy, want = sys.argv[2], int(sys.argv[3])
lm, lc, lr, lt = map(int, sys.argv[4:8])
o = d["outcomes"]
assert d["strategy"] == strategy.rstrip("3"), d["strategy"]
assert o["cebox_crash"] == 0 and o["hang"] == 0, o
assert sum(o.values()) == d["runs"], (o, d["runs"])
assert d["unique_stacks"] >= 5, d["unique_stacks"]
if strategy == "stacks":
    assert d["runs"] == d["unique_stacks"], d
if strategy == "nth":
    assert d["runs"] == d["calls"] and d["calls"] >= d["unique_stacks"], d
if strategy.startswith("states"):
    # ce5 has no limited level: low and critical; a table with one: three
    # (under ce5 none is refused, which would read as handled)
    assert d["runs"] == 3 if strategy == "states3" else d["runs"] == 2 and o["handled"] == 0, d
assert len(d["buckets"]) == want, [b["where"] for b in d["buckets"]]
assert o["crash"] == sum(b["count"] for b in d["buckets"]), o
seen = set()
for b in d["buckets"]:
    top = b["crash_stack"][0]
    inj = b["injected"]
    assert b["signal"] == "SIGSEGV" and b["confirmed"] is True and b["inside_cebox"] is False, b
    assert inj["reason"] == "injected", inj
    if top["function"] == "make_label":
        assert top["line"] == lc and inj["stack"][0]["line"] == lm and inj["size"] == 24, (top, inj)
    elif top["function"] == "grow_table":
        assert top["line"] == lt and inj["stack"][0]["line"] == lr and inj["size"] == 256, (top, inj)
    else:
        raise AssertionError("a bucket at " + b["where"])
    assert b["crash_stack"][1]["function"] == "main", b["crash_stack"][1]
    seen.add(top["function"])
    print(b["replay"])
    print(b["replay_stress"])
assert want == 0 or seen == {"make_label", "grow_table"}, seen
PY
}

# ---- the default campaign: stacks
mkdir -p "$TMP/tmpdir"
st=0
TMPDIR="$TMP/tmpdir" "$CEBOX" stress -j 2 --json "$TMP/c.json" -- "$P" > "$TMP/c.txt" 2> "$TMP/c.err" || st=$?
BAD_SHOW="$TMP/c.txt $TMP/c.err"
[ "$st" -eq 1 ] && ok "stacks: exit status 1 (crashes found)" || bad "stacks: exit status $st, expected 1"
if check_json "$TMP/c.json" stacks 2 > "$TMP/replays"; then ok "stacks: exactly two buckets, at make_label and grow_table, their lines, confirmed"; else bad "stacks: the buckets"; fi
if grep -q "^bucket 1: SIGSEGV at make_label stress_target.c:$LC, 1 run (alone, it reproduces)" "$TMP/c.txt" &&
   grep -q "^bucket 2: SIGSEGV at grow_table stress_target.c:$LT, 1 run (alone, it reproduces)" "$TMP/c.txt"; then
    ok "stacks: the text table names both buckets"
else
    bad "stacks: the text table"
fi
# The buckets come in the plan's order, not in the order parallel runs end.
"$CEBOX" stress -j 1 -- "$P" > "$TMP/c1.txt" 2> /dev/null
if [ "$(grep '^bucket ' "$TMP/c1.txt")" = "$(grep '^bucket ' "$TMP/c.txt")" ] && grep -q '^bucket 2' "$TMP/c1.txt"; then
    ok "stacks: the same buckets in the same order with -j 1 as with -j 2"
else
    bad "stacks: the buckets' order depends on -j"
fi
has "crash inside cebox 0" "$TMP/c.txt" && ok "stacks: no crash inside cebox" || bad "stacks: no crash inside cebox"
[ -z "$(ls -A "$TMP/tmpdir")" ] && ok "the runs' directory (in TMPDIR) is removed at the end" || bad "TMPDIR left: $(ls "$TMP/tmpdir")"

# ---- each replay command crashes where its bucket says
i=0
grep '^cebox run ' "$TMP/replays" | while IFS= read -r line; do
    i=$((i + 1))
    rm -rf "$TMP/r$i"
    cmd=$(printf '%s\n' "$line" | sed "s|^cebox run|\"$CEBOX\" run --quiet --out \"$TMP/r$i\"|")
    eval "$cmd" > /dev/null 2>&1
    echo "$? $("$CEBOX" report "$TMP/r$i" 2> /dev/null | grep 'died of')"
done > "$TMP/replayed"
if [ "$(grep -c "^139 pid [0-9]* died of SIGSEGV at make_label stress_target.c:$LC, .*injected failure of malloc(24) at make_label stress_target.c:$LM\$" "$TMP/replayed")" -eq 1 ] &&
   [ "$(grep -c "^139 pid [0-9]* died of SIGSEGV at grow_table stress_target.c:$LT, .*injected failure of malloc(256) at grow_table stress_target.c:$LR\$" "$TMP/replayed")" -eq 1 ]; then
    ok "each cebox run replay line crashes at its bucket, after its injected failure"
else
    bad "the replay lines"; sed 's/^/#   /' "$TMP/replayed"
fi
id=$(grep '^cebox stress ' "$TMP/replays" | head -1 | sed 's/.*--replay \([^ ]*\) .*/\1/')
st=0
"$CEBOX" stress --replay "$id" -- "$P" > "$TMP/rp.txt" 2>&1 || st=$?
if [ "$st" -eq 1 ] && has "^cebox stress: .*: 1 run " "$TMP/rp.txt" && has "^bucket 1: SIGSEGV at make_label stress_target.c:$LC" "$TMP/rp.txt"; then
    ok "cebox stress --replay $id: the one run, the same bucket"
else
    bad "cebox stress --replay (exit $st)"; sed 's/^/#   /' "$TMP/rp.txt"
fi

# ---- --out keeps every run's logs
st=0
"$CEBOX" stress -j 2 --out "$TMP/kept" --format json -- "$P" > "$TMP/k.json" 2> /dev/null || st=$?
runs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["runs"])' "$TMP/k.json" 2> /dev/null)
if [ "$st" -eq 1 ] && [ -n "$runs" ] && [ "$(ls -d "$TMP/kept"/run-* | wc -l)" -eq "$runs" ] && ls "$TMP/kept"/run-1/cebox-*.log > /dev/null 2>&1 &&
   [ -f "$TMP/kept/run-1/stderr" ] && [ -f "$TMP/kept/record-1/stacks" ]; then
    ok "--out keeps each run's logs and output ($runs runs)"
else
    bad "--out DIR (exit $st, runs $runs)"; ls "$TMP/kept" | head
fi

# ---- other strategies, an exec'd child
st=0
"$CEBOX" stress -j 2 --strategy nth --format json -- "$P" > "$TMP/n.json" 2> "$TMP/n.err" || st=$?
if [ "$st" -eq 1 ] && check_json "$TMP/n.json" nth 2 > /dev/null; then ok "nth: one run per call, the same two buckets"; else bad "nth (exit $st)"; fi
st=0
"$CEBOX" stress --strategy states --format json -- "$P" > "$TMP/s.json" 2> "$TMP/s.err" || st=$?
if [ "$st" -eq 0 ] && check_json "$TMP/s.json" states 0 > /dev/null; then ok "states: low and critical under ce5 (no limited level), nothing crashes or is refused (exit 0)"; else bad "states (exit $st)"; fi
st=0
"$CEBOX" stress --strategy states --thresholds ppc --format json -- "$P" > "$TMP/s3.json" 2> "$TMP/s3.err" || st=$?
if [ "$st" -eq 0 ] && check_json "$TMP/s3.json" states3 0 > /dev/null; then ok "states: limited, low and critical under the ppc table (exit 0)"; else bad "states under ppc (exit $st)"; fi
st=0
"$CEBOX" stress -j 2 --format json -- "$P" exec > "$TMP/e.json" 2> "$TMP/e.err" || st=$?
if [ "$st" -eq 1 ] && check_json "$TMP/e.json" stacks 2 > /dev/null; then ok "an exec'd child (follow): its two buckets"; else bad "exec'd child (exit $st)"; fi

# ---- a hang: killed at the timeout, with its process group
start=$(date +%s)
st=0
"$CEBOX" stress --timeout 1 --format json -- "$P" hang > "$TMP/h.json" 2> "$TMP/h.err" || st=$?
took=$(( $(date +%s) - start ))
if [ "$st" -eq 1 ] && [ "$took" -lt 8 ] && python3 - "$TMP/h.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["outcomes"]["hang"] == 1 and d["runs"] == 1 and d["buckets"] == [], d
assert len(d["hangs"]) == 1 and "--fail-stack" in d["hangs"][0]["replay"], d["hangs"]
PY
then ok "a hang is an outcome, killed after --timeout ($took s)"; else bad "hang (exit $st, $took s)"; fi
st=0
"$CEBOX" stress --timeout 0.5 --out "$TMP/hung" -- "$P" hang > /dev/null 2>&1 || st=$?
session=$(sed -n '1s/^cebox: session \([^ ]*\) .*/\1/p' "$TMP/hung/run-1/cebox.session" 2> /dev/null)
if [ "$st" -eq 1 ] && [ -n "$session" ] && [ ! -e "$session" ]; then ok "the hung run's session file is removed"; else bad "the hung run's session file ($session) is left"; fi
# Gone means reaped when cebox stress returns, not left to whichever process
# adopts orphans: python adopts them here (a child subreaper), and a run's
# process it is left with (dying or a zombie) is one cebox stress did not
# wait for.  (Not pgrep: that sees every other run on the machine.)
if python3 - "$CEBOX" "$P" "$TMP/hung2" <<'PY'
import ctypes, os, subprocess, sys
PR_SET_CHILD_SUBREAPER = 36
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER): " + os.strerror(ctypes.get_errno()))
cebox, target, out = sys.argv[1:]
subprocess.run([cebox, "stress", "--timeout", "0.5", "--out", out, "--", target, "hang"],
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    pid, _ = os.waitpid(-1, os.WNOHANG)
except ChildProcessError:
    sys.exit(0)
sys.exit("a process of the run was left to its adopter (pid %d, %s)" % (pid, "reaped" if pid else "alive"))
PY
then ok "the hung run's processes are gone when cebox stress returns"; else bad "the hung run's processes are gone when cebox stress returns"; fi

# ---- stdin: --input FILE, else /dev/null
printf 'line one\nline two\n' > "$TMP/input"
st=0
"$CEBOX" stress --strategy states --out "$TMP/in1" --input "$TMP/input" -- cat > /dev/null 2>&1 || st=$?
"$CEBOX" stress --strategy states --out "$TMP/in2" -- cat > /dev/null 2>&1 || st=$((st + $?))
if [ "$st" -eq 0 ] && cmp -s "$TMP/input" "$TMP/in1/run-2/stdout" && cmp -s "$TMP/input" "$TMP/in1/record-1/stdout" &&
   [ -f "$TMP/in2/run-1/stdout" ] && [ ! -s "$TMP/in2/run-1/stdout" ]; then
    ok "every run reads --input FILE, or /dev/null"
else
    bad "--input (exit $st)"
fi

# ---- a program that crashes with nothing injected: nothing to stress
st=0
"$CEBOX" stress -- "$B/tests/programs/crash_after_oom" crash > "$TMP/x.out" 2> "$TMP/x.err" || st=$?
if [ "$st" -eq 1 ] && hasF "crashed with no failure injected (status 139, at plain_crash crash_after_oom.c:" "$TMP/x.err"; then
    ok "a crash of the recording run: said, with its status and place (exit 1)"
else
    bad "a crash of the recording run (exit $st)"; sed 's/^/#   /' "$TMP/x.err"
fi

# ---- usage errors: one line naming what is accepted, status 2
usage() { # usage NAME TEXT ARGS...
    name=$1 text=$2
    shift 2
    st=0
    "$CEBOX" stress "$@" > "$TMP/u.out" 2> "$TMP/u.err" || st=$?
    if [ "$st" -eq 2 ] && [ "$(wc -l < "$TMP/u.err")" -eq 1 ] && hasF "$text" "$TMP/u.err"; then ok "usage: $name"; else
        bad "usage: $name (exit $st)"; sed 's/^/#   /' "$TMP/u.err"; fi
}
usage "bad strategy" "--strategy 'all' is not valid; accepted: stacks, nth or states" --strategy all -- "$P"
usage "bad -j" "-j '0' is not valid; accepted: a number of parallel runs from 1 to 256" -j 0 -- "$P"
usage "bad timeout" "--timeout 'soon' is not valid; accepted: seconds from 0.1 to 86400" --timeout soon -- "$P"
usage "bad format" "--format 'xml' is not valid; accepted: text or json" --format xml -- "$P"
usage "bad replay id" "--replay 'stack:12' is not valid; accepted: stack:HASH, nth:N or state:limited|low|critical" --replay stack:12 -- "$P"
usage "missing value" "--timeout needs a value" --timeout
usage "no program" "stress: no program given" -j 2
usage "unknown option" "unknown option '--nope' for 'stress'" --nope -- "$P"
usage "bad setting" "CEBOX_RAM='lots' is not valid" --ram lots -- "$P"
usage "unreadable input" "--input $TMP/none: No such file or directory" --input "$TMP/none" -- "$P"
st=0
"$CEBOX" stress --help > "$TMP/help" 2>&1 || st=$?
[ "$st" -eq 0 ] && has "^Usage: cebox stress" "$TMP/help" && hasF "--strategy stacks|nth|states" "$TMP/help" && ok "stress --help" || bad "stress --help"
finish
