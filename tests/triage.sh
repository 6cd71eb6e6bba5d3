#!/bin/sh
# triage.sh - `cebox report` on a process that died of a signal: the line
# naming the crash and the last failed allocation before it (both stacks
# symbolized, the milliseconds between them), processes[].crash in JSON,
# after_failure null for a crash no failure preceded, and no "inside
# cebox" for a crash in the program's own code.
set -u
B="${top_builddir:-.}"
S="${top_srcdir:-.}"
CEBOX="$B/cebox"
P="$B/tests/programs"
. "${top_srcdir:-.}/tests/testlib.sh"

line_of() { grep -n -- "$2" "$S/tests/programs/$1" | head -1 | cut -d: -f1; }
C=crash_after_oom.c
LM=$(line_of $C 'SITE:malloc') LC=$(line_of $C 'SITE:crash') LN=$(line_of $C 'SITE:null')

# ---- an injected failure of the first malloc, then a write through NULL
"$CEBOX" run --out "$TMP/a" --fail-nth 1 "$P/crash_after_oom" > /dev/null 2>&1
"$CEBOX" report "$TMP/a" > "$TMP/text" 2> /dev/null
line=$(grep "died of" "$TMP/text")
if printf '%s\n' "$line" | grep -Eq "^pid [0-9]+ died of SIGSEGV at format_sample $C:$LC, [0-9]+\.[0-9]+ ms after the injected failure of malloc\(48\) at format_sample $C:$LM\$"; then
    ok "text: the crash and the injected failure before it, both at their lines"
else
    bad "text: the crash line"; printf '#   %s\n' "$line"
fi
ms=$(printf '%s\n' "$line" | sed -n 's/.*, \([0-9.]*\) ms after.*/\1/p')
if [ -n "$ms" ] && awk -v m="$ms" 'BEGIN { exit !(m < 1000) }'; then ok "text: the ms figure is small ($ms)"; else bad "text: ms figure ($ms)"; fi
if grep -q "inside cebox" "$TMP/text"; then bad "text: no 'inside cebox' for the program's crash"; else ok "text: no 'inside cebox' for the program's crash"; fi

"$CEBOX" report --format json "$TMP/a" > "$TMP/json" 2> /dev/null
if python3 - "$TMP/json" "$LC" "$LM" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
c = d["processes"][0]["crash"]
a = c["after_failure"]
assert c["signal"] == "SIGSEGV", c
assert c["fault_addr"] == 0, c            # buf[0] with buf NULL
assert c["inside_cebox"] is False, c
assert c["stack"][0]["function"] == "format_sample" and c["stack"][0]["line"] == int(sys.argv[2]), c["stack"][0]
assert c["stack"][1]["function"] == "main", c["stack"][1]
assert a["reason"] == "injected" and a["api"] == "malloc" and a["size"] == 48, a
assert 0 <= a["ms_before"] < 1000, a
assert a["stack"][0]["function"] == "format_sample" and a["stack"][0]["line"] == int(sys.argv[3]), a["stack"][0]
PY
then ok "json: processes[].crash with after_failure"; else bad "json: processes[].crash with after_failure"; fi

# ---- a crash no failure preceded
"$CEBOX" run --out "$TMP/b" "$P/crash_after_oom" crash > /dev/null 2>&1
"$CEBOX" report "$TMP/b" > "$TMP/text2" 2> /dev/null
if grep -Eq "^pid [0-9]+ died of SIGSEGV at plain_crash $C:$LN\$" "$TMP/text2"; then ok "text: a crash with no failure before it"; else bad "text: a crash with no failure before it"; grep "died" "$TMP/text2"; fi
"$CEBOX" report --format json "$TMP/b" > "$TMP/json2" 2> /dev/null
if python3 - "$TMP/json2" "$LN" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["processes"][0]["crash"]
assert c["after_failure"] is None and c["inside_cebox"] is False, c
assert c["stack"][0]["function"] == "plain_crash" and c["stack"][0]["line"] == int(sys.argv[2]), c["stack"][0]
PY
then ok "json: after_failure null without a failure"; else bad "json: after_failure null without a failure"; fi

# ---- the first allocation call is the unwinder's own, in cebox's crash
# handler: fault injection must not see it (it once hung there, unwinding
# from inside the unwinder)
# (in a process group of its own, killed whole after 20 s: a hang must fail
# the check, not the suite)
set -m
"$CEBOX" run --out "$TMP/d" --fail-nth 1 "$P/crash_after_oom" crash > "$TMP/out4" 2>&1 < /dev/null &
pg=$!
set +m
for _ in $(seq 200); do kill -0 "$pg" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pg" 2>/dev/null && kill -KILL -- "-$pg" 2>/dev/null
st=0
wait "$pg" || st=$?
if [ "$st" -eq 139 ] && grep -q "injected 0\|failed allocations: 0" "$TMP/out4"; then
    ok "a crash handler's unwind is no program call: not injected into, no hang (exit 139)"
else
    bad "a crash handler's unwind is no program call: not injected into, no hang (exit $st, expected 139)"
fi

# ---- a process that exited has no crash
"$CEBOX" run --out "$TMP/c" "$P/crash_after_oom" > /dev/null 2>&1
"$CEBOX" report --format json "$TMP/c" > "$TMP/json3" 2> /dev/null
if python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["processes"][0]["crash"] is None' "$TMP/json3"; then ok "json: crash null for an exit"; else bad "json: crash null for an exit"; fi
finish
