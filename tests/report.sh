#!/bin/sh
# report.sh - failed allocations recorded under `cebox run --out DIR` (and
# by a program linked with libcebox), read back with `cebox report`:
#  - known chains of functions, through malloc, mmap, HeapAlloc, LocalAlloc
#    and VirtualAlloc, appear in order with the right file:line, in text,
#    JSON and folded output; sites are grouped by stack, most frequent first;
#  - a failure two levels of inlining deep (-O2): its whole inline chain,
#    as addr2line -f -i gives it, also without .debug_aranges and by clang;
#  - reasons: slot exhausted, larger than the slot, fragmentation, full
#    fixed heap; the slot map at the first failure of a site;
#  - a program that crashes right after a failure still has it in its log;
#  - programs that use fd 3, close it, dup2 their own file over the log's
#    descriptor or close_range everything: their files get none of cebox's
#    bytes, forked children keep their descriptors, no failure is lost
#    (also under ulimit -n 16), and libunwind's pipe never takes the numbers
#    of the program's pipe;
#  - truncated and corrupt logs: a clear error naming the file and offset,
#    and everything intact before it still reported;
#  - real programs (lua5.4, sqlite3) pushed past the slot: their stacks name
#    their library functions;
#  - without --out nothing is written and the summary says how to get
#    stacks; --stack-depth; usage errors.
set -u
B="${top_builddir:-.}"
S="${top_srcdir:-.}"
CEBOX="$B/cebox"
ABS=$(cd "$B" && pwd)
P="$B/tests/programs"
. "${top_srcdir:-.}/tests/testlib.sh"

check() { # check NAME COMMAND...: ok when the command succeeds
    name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}
show() { sed 's/^/#   /' "$1" | head -"${2:-40}"; }

# The line of a marker in a test program's source.
line_of() { grep -n -- "$2" "$S/tests/programs/$1" | head -1 | cut -d: -f1; }

# in_order FILE PATTERN...: the patterns (grep -E) match consecutive lines
# of FILE, in this order.
in_order() {
    file=$1
    shift
    printf '%s\n' "$@" > "$TMP/patterns"
    awk 'FNR == NR { p[++n] = $0; next }
        { lines[++m] = $0 }
        END {
            for (i = 1; i <= m; i++) {
                k = 0
                while (k < n && i + k <= m && lines[i + k] ~ p[k + 1]) k++
                if (k == n) exit 0
            }
            exit 1
        }' "$TMP/patterns" "$file"
}

C=oom_chain.c
L3=$(line_of $C 'SITE:malloc') L2=$(line_of $C 'CALL:level3') L1=$(line_of $C 'CALL:level2')
LM=$(line_of $C 'CALL:level1 ') LMAIN=$(line_of $C 'SITE:main') LMMAP=$(line_of $C 'SITE:mmap')
LMM=$(line_of $C 'CALL:level1-mmap') LSEGV=$(line_of $C 'CALL:level1-segv') LFRAG=$(line_of $C 'CALL:level1-frag')

# ---- malloc: a chain of three functions, three times, and main once more
"$CEBOX" run --slot-size 1M --out "$TMP/m" "$P/oom_chain" malloc > "$TMP/out" 2> "$TMP/err"
st=$?
if [ "$st" -eq 0 ] && grep -q "failed 4" "$TMP/out"; then ok "oom_chain malloc runs (4 failures)"; else bad "oom_chain malloc runs (exit $st)"; show "$TMP/err"; fi
log=$(ls "$TMP"/m/cebox-[0-9]*.log 2> /dev/null | head -1)
check "one event log per process, cebox-PID.log" test -n "$log" -a "$(ls "$TMP"/m/cebox-[0-9]*.log | wc -l)" -eq 1
check "the exit summary names the log" grep -qF "call stacks of the failures: cebox report $log" "$TMP/err"

"$CEBOX" report "$TMP/m" > "$TMP/text" 2> "$TMP/rerr"
st=$?
check "cebox report DIR succeeds" test "$st" -eq 0
if in_order "$TMP/text" \
    "^    #0 +0x[0-9a-f]+  chain_level3 at .*$C:$L3\$" \
    "^    #1 +0x[0-9a-f]+  chain_level2 at .*$C:$L2\$" \
    "^    #2 +0x[0-9a-f]+  chain_level1 at .*$C:$L1\$" \
    "^    #3 +0x[0-9a-f]+  main at .*$C:$LM\$"; then
    ok "text: the chain in order with file:line (malloc)"
else
    bad "text: the chain in order with file:line (malloc: lines $L3 $L2 $L1 $LM)"; show "$TMP/text"
fi
check "text: the most frequent site first, counted" grep -q "^site 1: 3 failures, malloc family, size 900.0 KB" "$TMP/text"
check "text: reason of the chain's failures" grep -q "reason: slot exhausted (3); memory state: normal (3)" "$TMP/text"
check "text: the second site, larger than the slot" in_order "$TMP/text" "^site 2: 1 failure" \
    "reason: request at least the size of the slot" "^    #0 .* main at .*$C:$LMAIN\$"
check "text: the exit summary of the run" grep -q "^cebox:   failed allocations: 4 (malloc family 4" "$TMP/text"
# The image at block 1, the main stack after it, the heap's first region,
# free blocks, and the system libraries' writable data at the top (as many
# blocks as this machine's libc and ld.so need: 3 on Debian 12, 7 free).
check "text: slot map at the first failure" in_order "$TMP/text" "^  slot at the first failure .*[0-9] of 16 blocks free" \
    "^    00000000  -Ee*SHhh\.+D[Dd]*\$"
check "cebox report LOGFILE gives the same" sh -c "'$CEBOX' report '$log' | cmp -s - '$TMP/text'"

"$CEBOX" report --format json "$TMP/m" > "$TMP/json"
if python3 - "$TMP/json" "$C" "$L3" "$L2" "$L1" "$LM" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
c, lines = sys.argv[2], [int(x) for x in sys.argv[3:]]
p = doc["processes"][0]
assert p["command"].endswith("oom_chain malloc") and p["profile"] == "ce5"
assert p["summary"]["failed"] == 4 and p["summary"]["failures"]["malloc"] == 4
site = p["oom"][0]
assert site["count"] == 3 and site["reasons"] == ["exhausted"] and site["api"] == "malloc"
assert site["size_min"] == site["size_max"] == 921600 and site["states"] == ["normal"]
names = ["chain_level3", "chain_level2", "chain_level1", "main"]
for frame, name, line in zip(site["stack"], names, lines):
    assert frame["function"] == name, frame
    assert frame["file"].endswith(c) and frame["line"] == line, frame
    assert frame["module"] == "oom_chain" and frame["address"] > frame["offset"] >= 0, frame
assert p["oom"][1]["reasons"] == ["too-large"] and p["oom"][1]["count"] == 1
assert doc["errors"] == []
PY
then ok "json: the document, the site and the chain with file and line"; else bad "json: the document"; show "$TMP/json" 60; fi

"$CEBOX" report --format folded "$TMP/m" > "$TMP/folded"
check "folded: one line per site, outermost first, then the count" \
    grep -qE '(^|;)main;chain_level1;chain_level2;chain_level3 3$' "$TMP/folded"
check "folded: two sites" test "$(wc -l < "$TMP/folded")" -eq 2

# ---- mmap
"$CEBOX" run --quiet --slot-size 1M --out "$TMP/mm" "$P/oom_chain" mmap > /dev/null 2>&1
"$CEBOX" report "$TMP/mm" > "$TMP/text"
if in_order "$TMP/text" "^site 1: 2 failures, mmap family" "reason: slot exhausted \(2\)" \
    "^    #0 .*  chain_level3 at .*$C:$LMMAP\$" "^    #1 .*  chain_level2 at .*$C:$L2\$" \
    "^    #2 .*  chain_level1 at .*$C:$L1\$" "^    #3 .*  main at .*$C:$LMM\$"; then
    ok "text: the chain in order with file:line (mmap)"
else
    bad "text: the chain in order with file:line (mmap)"; show "$TMP/text"
fi
"$CEBOX" report --format json "$TMP/mm" | python3 -c '
import json, sys
s = json.load(sys.stdin)["processes"][0]["oom"][0]
assert s["api"] == "mmap" and s["count"] == 2
assert [f["function"] for f in s["stack"][:4]] == ["chain_level3", "chain_level2", "chain_level1", "main"]
' && ok "json: mmap site" || bad "json: mmap site"
check "folded: mmap chain" sh -c "'$CEBOX' report --format folded '$TMP/mm' | grep -qE ';main;chain_level1;chain_level2;chain_level3 2\$'"

# ---- threads failing at once
"$CEBOX" run --quiet --slot-size 1M --out "$TMP/th" "$P/oom_chain" threads > "$TMP/out" 2>&1
"$CEBOX" report "$TMP/th" > "$TMP/text" 2> "$TMP/rerr"
st=$?
if [ "$st" -eq 0 ] && grep -q "failed 800" "$TMP/out" && grep -q "^site 1: 800 failures, malloc family" "$TMP/text" &&
    in_order "$TMP/text" "chain_level3 at .*$C:$L3\$" "chain_level2" "chain_level1" "thread_main at .*$C:$(line_of $C 'CALL:level1-thread')\$" &&
    [ "$(grep -c '^site ' "$TMP/text")" -eq 1 ]; then
    ok "4 threads failing at once: one intact log, one site of 800"
else
    bad "4 threads failing at once (report exit $st)"; show "$TMP/rerr"; show "$TMP/text"
fi

if ! grep -q "not recorded" "$TMP/text"; then
    ok "under the default log limit every failure is recorded"
else
    bad "under the default log limit every failure is recorded"; show "$TMP/text"
fi

# ---- the log limit: failures past it are counted, not written
"$CEBOX" run --slot-size 1M --log-limit 64K --out "$TMP/lim" "$P/oom_chain" threads > /dev/null 2> "$TMP/err"
st_run=$?
"$CEBOX" report "$TMP/lim" > "$TMP/text" 2> "$TMP/rerr"
st=$?
"$CEBOX" report --format json "$TMP/lim" > "$TMP/json" 2>> "$TMP/rerr"
lim_log=$(ls "$TMP/lim"/cebox-[0-9]*.log)
lim_size=$(wc -c < "$lim_log")
unrec=$(sed -n 's/.* \([0-9][0-9]*\) of them not recorded: the log reached its size limit.*/\1/p' "$TMP/err")
recorded=$(sed -n 's/^\([0-9][0-9]*\) failed allocations recorded at.*/\1/p' "$TMP/text")
if [ "$st_run" -eq 0 ] && [ "$st" -eq 0 ] && [ -n "$unrec" ] && [ "$unrec" -gt 0 ] && [ -n "$recorded" ] &&
    [ $((recorded + unrec)) -eq 800 ] && [ "$lim_size" -ge 65536 ] && [ "$lim_size" -lt $((65536 + 4096)) ] &&
    grep -q "\"unrecorded_failures\": $unrec" "$TMP/json"; then
    ok "--log-limit 64K: the log stops near 64K, $recorded recorded + $unrec counted = 800"
else
    bad "--log-limit 64K (run $st_run, report $st, log $lim_size bytes, recorded '$recorded', unrecorded '$unrec')"
    show "$TMP/err"; show "$TMP/rerr"
fi
"$CEBOX" settings --log-limit 1K > /dev/null 2> "$TMP/rerr"; st=$?
check "--log-limit refuses 1K (exit 2, one line)" sh -c "test $st -eq 2 && test \$(wc -l < '$TMP/rerr') -eq 1 && grep -q \"CEBOX_LOG_LIMIT='1K' is not valid; accepted: a size in bytes with optional K, M or G, from 64K to 64G\" '$TMP/rerr'"

# ---- fragmentation: enough free blocks, no two together
"$CEBOX" run --quiet --slot-size 1M --out "$TMP/fr" "$P/oom_chain" frag > /dev/null 2>&1
"$CEBOX" report "$TMP/fr" > "$TMP/text"
if in_order "$TMP/text" "reason: no contiguous run of free blocks \(fragmentation\) \(1\)" \
    "^    #0 .*  chain_level3 at .*$C:$LMMAP\$" "chain_level2" "chain_level1" "^    #3 .*  main at .*$C:$LFRAG\$" &&
    in_order "$TMP/text" "^  slot at the first failure .*: [2-5] of 16 blocks free, largest free run 1;" "^    00000000  -Ee*SHhh(\.C)+\.D[Dd]*\$"; then
    ok "fragmentation: the reason, the chain, and a map of alternating free and used blocks"
else
    bad "fragmentation: the reason, the chain, and the map"; show "$TMP/text" 60
fi

# ---- HeapAlloc, LocalAlloc, VirtualAlloc: a program linked with libcebox
W=oom_winapi.c
mkdir -p "$TMP/w"
CEBOX_SLOT_SIZE=1M CEBOX_OUT="$TMP/w" "$P/oom_winapi" > "$TMP/out" 2> "$TMP/err"
check "oom_winapi runs" grep -q "failed 3, fixed heap full after" "$TMP/out"
"$CEBOX" report "$TMP/w" > "$TMP/text"
for api in HeapAlloc LocalAlloc VirtualAlloc; do
    if in_order "$TMP/text" "^site [0-9]: 1 failure, $api, size 900.0 KB" "reason: slot exhausted \(1\)" \
        "^    #0 .*  win_level2 at .*$W:$(line_of $W "SITE:$api")\$" \
        "^    #1 .*  win_level1 at .*$W:$(line_of $W 'CALL:win_level2')\$" \
        "^    #2 .*  main at .*$W:$(line_of $W 'CALL:win_level1')\$"; then
        ok "text: the chain in order with file:line ($api)"
    else
        bad "text: the chain in order with file:line ($api)"; show "$TMP/text" 60
    fi
done
check "HeapAlloc on a full fixed-size heap: its own reason" in_order "$TMP/text" "^site 1: 4 failures, HeapAlloc" \
    "reason: fixed-size heap full \(4\)" "^    #0 .*  fill_fixed_heap at .*$W:$(line_of $W 'SITE:heapfull')\$"
check "a linked program's log has its exit summary" grep -q "^cebox:   failed allocations: 7 (malloc family 0, mmap family 0, VirtualAlloc 1, HeapAlloc 5, LocalAlloc 1)" "$TMP/text"
"$CEBOX" report --format json "$TMP/w" | python3 -c '
import json, sys
oom = json.load(sys.stdin)["processes"][0]["oom"]
heap = [s for s in oom if s["api"] == "HeapAlloc" and s["reasons"] == ["exhausted"]][0]
assert [f["function"] for f in heap["stack"][:3]] == ["win_level2", "win_level1", "main"]
assert oom[0]["reasons"] == ["heap-full"] and oom[0]["count"] == 4
' && ok "json: HeapAlloc sites" || bad "json: HeapAlloc sites"
check "folded: HeapAlloc chain" sh -c "'$CEBOX' report --format folded '$TMP/w' | grep -qE ';main;win_level1;win_level2 1\$'"

# ---- requests larger than the slot, refused by CE with 87, are recorded too
mkdir -p "$TMP/big"
CEBOX_SLOT_SIZE=1M CEBOX_OUT="$TMP/big" "$P/oom_winapi" toolarge > "$TMP/out" 2> "$TMP/err"
check "too large: both refused with 87" grep -q "too large: failed failed, error 87" "$TMP/out"
"$CEBOX" report "$TMP/big" > "$TMP/text"
for api in VirtualAlloc HeapAlloc; do
    check "too large: recorded ($api)" in_order "$TMP/text" "^site [0-9]: 1 failure, $api, size 40.0 MB" \
        "reason: request at least the size of the slot \(1\)"
done

# ---- one byte formatter: the exit summary and the report's own lines
# print a count the same way (N usable bytes left allocated, and a failed
# request of N bytes)
for count in 1000 4088 12280; do
    rm -rf "$TMP/bytes"; mkdir -p "$TMP/bytes"
    CEBOX_SLOT_SIZE=1M CEBOX_OUT="$TMP/bytes" "$P/oom_winapi" bytes "$count" > /dev/null 2>&1
    "$CEBOX" report "$TMP/bytes" > "$TMP/text"
    in_summary=$(sed -n 's/^cebox:   still allocated: \(.*\) in 1 block$/\1/p' "$TMP/text")
    in_site=$(sed -n "s/^site [0-9]*: 1 failure, VirtualAlloc, size \([^(]*[^ (]\)\( ($count bytes)\)\{0,1\}\$/\1/p" "$TMP/text")
    if [ -n "$in_summary" ] && [ "$in_summary" = "$in_site" ]; then
        ok "$count bytes: printed as '$in_site' by the summary and the report"
    else
        bad "$count bytes: the summary says '$in_summary', the report '$in_site'"; show "$TMP/text" 30
    fi
done

# ---- a crash right after the failure loses nothing
"$CEBOX" run --slot-size 1M --out "$TMP/s" "$P/oom_chain" segv > /dev/null 2> "$TMP/err"
st=$?
check "the program crashes (128+SIGSEGV)" test "$st" -eq 139
"$CEBOX" report "$TMP/s" > "$TMP/text" 2> "$TMP/rerr"
st=$?
if [ "$st" -eq 0 ] && in_order "$TMP/text" "^site 1: 1 failure, malloc family" "reason: slot exhausted" \
    "chain_level3 at .*$C:$L3\$" "chain_level2" "chain_level1" "main at .*$C:$LSEGV\$" &&
    grep -q "^cebox:   killed by signal 11 (SIGSEGV)" "$TMP/text"; then
    ok "a crash right after the failure: the failure, its stack and the crash are in the log"
else
    bad "a crash right after the failure (report exit $st)"; show "$TMP/text"; show "$TMP/rerr"
fi

# ---- no .debug_aranges (as clang builds them): the units' ranges are walked
mkdir -p "$TMP/nar"
objcopy --remove-section .debug_aranges "$P/oom_chain" "$TMP/nar/oom_chain"
if readelf -S "$TMP/nar/oom_chain" | grep -q debug_aranges; then
    bad "a program without .debug_aranges (objcopy left the section)"
else
    "$CEBOX" run --quiet --slot-size 1M --out "$TMP/nar/o" "$TMP/nar/oom_chain" malloc > /dev/null 2>&1
    "$CEBOX" report "$TMP/nar/o" > "$TMP/text" 2> "$TMP/rerr"
    check "a program without .debug_aranges: file:line all the same" \
        in_order "$TMP/text" "chain_level3 at .*$C:$L3\$" "chain_level2 at .*$C:$L2\$" "chain_level1"
fi

# ---- inlined code (-O2): every level of an inline chain, innermost first
I=oom_inline.c
LII=$(line_of $I 'SITE:inner') LIO=$(line_of $I 'CALL:inner') LIM=$(line_of $I 'CALL:outer')
LK=$(line_of $I 'SITE:kept') LKM=$(line_of $I 'CALL:kept')
LD1=$(line_of $I 'SITE:deep1') LDF=$(line_of $I 'DEEP:first') LDM=$(line_of $I 'CALL:deep')
# The 20 levels of the deep chain, innermost first: deep1 at its malloc,
# deepK (K >= 2) at the line of its DEEP, then main.
deep_text="^    #0 +0x[0-9a-f]+  deep1 at .*$I:$LD1 \(inlined\)\$"
deep_folded="deep1"
for k in $(seq 2 20); do
    deep_text="$deep_text
^    #$((k - 1)) +0x[0-9a-f]+  deep$k at .*$I:$((LDF + k - 2)) \(inlined\)\$"
    deep_folded="deep$k;$deep_folded"
done
deep_text="$deep_text
^    #20 0x[0-9a-f]+  main at .*$I:$LDM\$"
# inline_checks LABEL PROGRAM ADDR2LINE: the failure two inlined levels
# deep shows inline_inner, inline_outer and main at their marked lines, in
# text, JSON and folded output, the one 20 levels deep all 21 frames, and
# every address of the program the same chain as `ADDR2LINE -f -i` (none:
# the marked lines only); the frames of the call that is not inlined are as
# before.
inline_checks() {
    label=$1 prog=$2 a2l=$3
    out="$TMP/inl-$n"
    "$CEBOX" run --quiet --slot-size 1M --out "$out" "$prog" > "$TMP/out" 2>&1
    check "$label: the three allocations fail" grep -q "failed 3" "$TMP/out"
    "$CEBOX" report "$out" > "$TMP/text" 2> "$TMP/rerr"
    if in_order "$TMP/text" "^site [123]: 1 failure, malloc family, size 2048.0 KB \(2097153 bytes\)" \
        "reason: request at least the size of the slot" \
        "^    #0 +0x[0-9a-f]+  inline_inner at .*$I:$LII \(inlined\)\$" \
        "^    #1 +0x[0-9a-f]+  inline_outer at .*$I:$LIO \(inlined\)\$" \
        "^    #2 +0x[0-9a-f]+  main at .*$I:$LIM\$" &&
        [ "$(grep -E "  (inline_inner|inline_outer|main) at .*$I:($LII|$LIO|$LIM)( |\$)" "$TMP/text" |
            awk '{ print $2 }' | sort -u | wc -l)" -eq 1 ]; then
        ok "$label text: the inline chain inline_inner, inline_outer, main at one address (lines $LII $LIO $LIM)"
    else
        bad "$label text: the inline chain (lines $LII $LIO $LIM)"; show "$TMP/text"; show "$TMP/rerr"
    fi
    if in_order "$TMP/text" "^site [123]: 1 failure, malloc family, size 2048.0 KB \(2097152 bytes\)" \
        "reason: request at least the size of the slot" \
        "^    #0 +0x[0-9a-f]+  kept_frame at .*$I:$LK\$" "^    #1 +0x[0-9a-f]+  main at .*$I:$LKM\$" \
        "^    #2 +0x[0-9a-f]+  __libc_start"; then
        ok "$label text: a call that is not inlined keeps one frame per address"
    else
        bad "$label text: a call that is not inlined"; show "$TMP/text"
    fi
    # shellcheck disable=SC2086 # one pattern a line
    (IFS='
'; set -f; in_order "$TMP/text" "^site [123]: 1 failure, malloc family, size 2048.0 KB \(2097154 bytes\)" \
        "reason: request at least the size of the slot" $deep_text "^    #21 0x[0-9a-f]+  __libc_start") &&
        ok "$label text: a chain of 20 inlined levels, all of them and main" ||
        { bad "$label text: a chain of 20 inlined levels"; show "$TMP/text" 80; }
    "$CEBOX" report --format json "$out" > "$TMP/json"
    if python3 - "$TMP/json" "$prog" "$I" "$a2l" "$LII" "$LIO" "$LIM" "$LK" "$LKM" "$LD1" "$LDF" "$LDM" <<'PY'
import itertools, json, subprocess, sys
doc = json.load(open(sys.argv[1]))
prog, src, a2l = sys.argv[2:5]
lii, lio, lim, lk, lkm, ld1, ldf, ldm = [int(x) for x in sys.argv[5:]]
oom = doc["processes"][0]["oom"]
inl = [s for s in oom if s["size_min"] == 2097153][0]["stack"]
kept = [s for s in oom if s["size_min"] == 2097152][0]["stack"]
want = [("inline_inner", lii, True), ("inline_outer", lio, True), ("main", lim, False)]
got = [(f["function"], f["line"], f["inlined"]) for f in inl[:3]]
assert got == want, got
assert all(f["file"].endswith(src) for f in inl[:3]), inl[:3]
assert len({(f["address"], f["offset"], f["module"]) for f in inl[:3]}) == 1, inl[:3]
assert inl[3]["address"] != inl[0]["address"] and not inl[3]["function"].startswith("inline_"), inl[3]
got = [(f["function"], f["line"], f["inlined"]) for f in kept[:2]]
assert got == [("kept_frame", lk, False), ("main", lkm, False)], got
deep = [s for s in oom if s["size_min"] == 2097154][0]["stack"]
want = [("deep1", ld1, True)] + [("deep%d" % k, ldf + k - 2, True) for k in range(2, 21)] + [("main", ldm, False)]
got = [(f["function"], f["line"], f["inlined"]) for f in deep[:21]]
assert got == want, got
assert len({f["address"] for f in deep[:21]}) == 1 and deep[21]["address"] != deep[0]["address"], deep[:22]
# Every address of the program, against addr2line -f -i at the call
# instruction (the return address less one): the same functions, files and
# lines, in the same order.
compared = 0
for stack in (inl, deep, kept) if a2l != "none" else ():
    for addr, frames in itertools.groupby(stack, key=lambda f: f["address"]):
        frames = list(frames)
        if frames[0]["module"] != prog.rsplit("/", 1)[-1]:
            continue
        said = subprocess.run([a2l, "-f", "-i", "-e", prog, hex(frames[0]["offset"] - 1)],
                              capture_output=True, text=True, check=True).stdout.split("\n")[:-1]
        expect = []
        for fn, where in zip(said[0::2], said[1::2]):
            path, line = where.split(" ")[0].rsplit(":", 1)
            expect.append((fn, None if path == "??" else path.rsplit("/", 1)[-1],
                           None if path == "??" else int(line)))
        mine = [(f["function"], f["file"].rsplit("/", 1)[-1] if f["file"] else None, f["line"]) for f in frames]
        assert mine == expect, (hex(frames[0]["offset"]), mine, expect)
        assert [f["inlined"] for f in frames] == [True] * (len(frames) - 1) + [False], frames
        compared += 1
assert a2l == "none" or compared >= 5, compared # the inline sites, kept_frame, main, _start
PY
    then ok "$label json: one entry per inline level, marked inlined, as $a2l -f -i says"; else bad "$label json: the inline chain"; show "$TMP/json" 80; fi
    "$CEBOX" report --format folded "$out" > "$TMP/folded"
    check "$label folded: each inline level its own frame, outermost first" \
        grep -qE '(^|;)main;inline_outer;inline_inner 1$' "$TMP/folded"
    check "$label folded: the call that is not inlined" grep -qE '(^|;)main;kept_frame 1$' "$TMP/folded"
    check "$label folded: the 20 inlined levels" grep -qE "(^|;)main;$deep_folded 1\$" "$TMP/folded"
}
# The reference for PROGRAM: GNU addr2line (2.40) misses the inlined
# levels of clang's DWARF 5, so LLVM's own addr2line is the reference for a
# program clang built (none when it is not installed).
reference_addr2line() {
    if readelf -p .comment "$1" 2> /dev/null | grep -q clang; then
        command -v llvm-addr2line || echo none
    else
        echo addr2line
    fi
}
a2l=$(reference_addr2line "$P/oom_inline")
inline_checks "-O2" "$P/oom_inline" "$a2l"
mkdir -p "$TMP/inl"
objcopy --remove-section .debug_aranges "$P/oom_inline" "$TMP/inl/oom_inline"
inline_checks "-O2 without .debug_aranges" "$TMP/inl/oom_inline" "$a2l"
if command -v clang > /dev/null 2>&1; then
    clang -std=c11 -g -O2 -fno-optimize-sibling-calls -fno-builtin -o "$TMP/inl/oom_inline_clang" "$S/tests/programs/$I"
    a2l=$(reference_addr2line "$TMP/inl/oom_inline_clang")
    [ "$a2l" = none ] && echo "# no llvm-addr2line: the clang build is checked against the marked lines only"
    inline_checks "clang -O2" "$TMP/inl/oom_inline_clang" "$a2l"
else
    echo "# skipped: clang -O2 inline chains (no clang installed)"
fi

# ---- separate debug files; a program rebuilt since the run
mkdir -p "$TMP/dbg"
cp "$P/oom_chain" "$TMP/dbg/oom_chain"
(cd "$TMP/dbg" && objcopy --only-keep-debug oom_chain oom_chain.debug &&
    objcopy --strip-debug --add-gnu-debuglink=oom_chain.debug oom_chain)
"$CEBOX" run --quiet --slot-size 1M --out "$TMP/dbg/o" "$TMP/dbg/oom_chain" malloc > /dev/null 2>&1
"$CEBOX" report "$TMP/dbg/o" > "$TMP/text" 2> "$TMP/rerr"
check "a stripped program: file:line from its separate debug file" \
    in_order "$TMP/text" "chain_level3 at .*$C:$L3\$" "chain_level2 at .*$C:$L2\$"
rm "$TMP/dbg/oom_chain.debug"
"$CEBOX" report "$TMP/dbg/o" > "$TMP/text" 2> "$TMP/rerr"
check "without debug information: the symbol, with module+offset" \
    in_order "$TMP/text" "^    #0 +0x[0-9a-f]+  chain_level3 \(oom_chain\+0x[0-9a-f]+\)\$" "^    #1 +0x[0-9a-f]+  chain_level2 \(oom_chain"
cp "$P/crash" "$TMP/dbg/oom_chain"
"$CEBOX" report "$TMP/dbg/o" > "$TMP/text" 2> "$TMP/rerr"
if grep -q "oom_chain: rebuilt since the run (its build-id differs); its frames are shown as module+offset" "$TMP/rerr" &&
    in_order "$TMP/text" "^    #0 +0x[0-9a-f]+  oom_chain\+0x[0-9a-f]+\$"; then
    ok "a program rebuilt since the run: not symbolized from the new file, and said so"
else
    bad "a program rebuilt since the run"; show "$TMP/rerr"
fi

# ---- damaged logs
size=$(wc -c < "$log")
head -c $((size - 5)) "$log" > "$TMP/cut.log"
"$CEBOX" report "$TMP/cut.log" > "$TMP/text" 2> "$TMP/rerr"
st=$?
if [ "$st" -eq 1 ] && grep -qE "^cebox report: $TMP/cut.log: offset [1-9][0-9]*: record truncated \([0-9]+ of its [0-9]+ payload bytes\); the [0-9]+ intact records before it are reported\$" "$TMP/rerr" &&
    grep -q "^site 1: 3 failures" "$TMP/text" && grep -q "chain_level3 at .*$C:$L3\$" "$TMP/text"; then
    ok "truncated log: error with file and offset (exit 1), the failures before it reported"
else
    bad "truncated log (exit $st)"; show "$TMP/rerr"; show "$TMP/text" 10
fi
cp "$log" "$TMP/bad.log"
printf 'X' | dd of="$TMP/bad.log" bs=1 seek=$((size - 30)) conv=notrunc 2> /dev/null
"$CEBOX" report "$TMP/bad.log" > "$TMP/text" 2> "$TMP/rerr"
st=$?
if [ "$st" -eq 1 ] && grep -qE "^cebox report: $TMP/bad.log: offset [1-9][0-9]*: corrupt record \(checksum mismatch\)" "$TMP/rerr" &&
    grep -q "^site 1: 3 failures" "$TMP/text"; then
    ok "corrupt log: error with file and offset (exit 1), the failures before it reported"
else
    bad "corrupt log (exit $st)"; show "$TMP/rerr"
fi
"$CEBOX" report --format json "$TMP/bad.log" > "$TMP/json" 2> /dev/null
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["processes"][0]["oom"][0]["count"] == 3
e = d["errors"][0]
assert e["file"].endswith("bad.log") and e["offset"] > 0 and "checksum" in e["message"]
' "$TMP/json" && ok "json: damage listed under errors, events before it kept" || bad "json: damage under errors"
echo "just some text, not a log" > "$TMP/text.log"
"$CEBOX" report "$TMP/text.log" > /dev/null 2> "$TMP/rerr"
st=$?
check "a file that is no log: exit 1, offset 0" sh -c "test $st -eq 1 && grep -q 'text.log: offset 0: not a cebox event log' '$TMP/rerr'"

# ---- real programs pushed past the slot
WORKLOADS="$(cd "$S" && pwd)/tests/real_workloads.sh"
(cd "$TMP" && "$ABS/cebox" run --quiet --out "$TMP/lua" sh -c ". '$WORKLOADS'; w_lua_big") > /dev/null 2>&1
"$CEBOX" report "$TMP/lua" > "$TMP/text" 2> "$TMP/rerr"
if grep -q "reason: slot exhausted" "$TMP/text" && grep -qE '^    #[0-9]+ +0x[0-9a-f]+  luaL?_[a-z]+ \(lua5\.4\+0x[0-9a-f]+\)$' "$TMP/text"; then
    ok "lua5.4 past the slot: stacks name Lua's functions ($(grep -oE ' luaL?_[a-z]+ ' "$TMP/text" | sort -u | tr -d ' ' | tr '\n' ' '))"
else
    bad "lua5.4 past the slot: stacks name Lua's functions"; show "$TMP/text" 60
fi
(cd "$TMP" && "$ABS/cebox" run --quiet --out "$TMP/sql" sh -c ". '$WORKLOADS'; w_sqlite_big") > /dev/null 2>&1
"$CEBOX" report "$TMP/sql" > "$TMP/text" 2> "$TMP/rerr"
if grep -q "reason: slot exhausted" "$TMP/text" && grep -qE '  sqlite3_[a-z_]+ \(libsqlite3\.so\.0\+0x[0-9a-f]+\)$' "$TMP/text"; then
    ok "sqlite3 past the slot: stacks name SQLite's functions ($(grep -oE ' sqlite3_[a-z_]+ ' "$TMP/text" | sort -u | tr -d ' ' | tr '\n' ' '))"
else
    bad "sqlite3 past the slot: stacks name SQLite's functions"; show "$TMP/text" 60
fi
check "several processes of one run (sh and its child): a log each, all reported" \
    test "$(grep -c '^== pid ' "$TMP/text")" -ge 2

# ---- the program's descriptors are its own: cebox's log lives apart
# (high, close-on-exec, checked before each write, opened again by path)
mkdir -p "$TMP/fd"
(cd "$TMP/fd" && "$ABS/cebox" run --quiet --out o3 -- bash -c 'exec 3>f.txt; echo data >&3; true') > /dev/null 2>&1
"$CEBOX" report --format json "$TMP/fd/o3" > "$TMP/json" 2> "$TMP/rerr"
st=$?
if [ "$(cat "$TMP/fd/f.txt" 2> /dev/null)" = data ] && [ "$(wc -c < "$TMP/fd/f.txt")" -eq 5 ] && [ "$st" -eq 0 ] &&
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["errors"] == [] and len(d["processes"]) == 1
assert d["processes"][0]["summary"] is not None
' "$TMP/json"; then
    ok "a program that opens its own fd 3: its file holds only its 5 bytes, the log is complete"
else
    bad "a program that opens its own fd 3 (f.txt $(wc -c < "$TMP/fd/f.txt") bytes, report exit $st)"; show "$TMP/rerr"
fi
out=$(cd "$TMP/fd" && "$ABS/cebox" run --quiet --out o4 -- bash -c 'exec 3>&-; echo hello | tr a-z A-Z' 2> "$TMP/err")
st=$?
if [ "$st" -eq 0 ] && [ "$out" = HELLO ]; then
    ok "a forked child leaves the program's new fd 3 (a pipe) alone: the pipeline prints HELLO"
else
    bad "a forked child leaves the program's fd 3 alone (exit $st, printed '$out')"; show "$TMP/err"
fi

(cd "$TMP/fd" && "$ABS/cebox" run --quiet --out o5 -- bash -c 'cd /; true') > /dev/null 2>&1
check "a program that changes its directory: its summary still goes to the relative --out" \
    test "$(ls "$TMP/fd/o5" | grep -c '^cebox-[0-9]*\.summary$')" -eq 1

# fdsteal FILE: takes the log's number with dup2, forks, then close_range.
steal() { # steal DIR [ULIMIT]: runs fdsteal, checks its file and the logs
    dir=$1 lim=${2:-}
    if [ -n "$lim" ]; then
        (ulimit -n "$lim" && "$CEBOX" run --quiet --slot-size 1M --out "$dir" "$P/fdsteal" "$dir.own") > "$TMP/out" 2> "$TMP/err"
    else
        "$CEBOX" run --quiet --slot-size 1M --out "$dir" "$P/fdsteal" "$dir.own" > "$TMP/out" 2> "$TMP/err"
    fi
    st=$?
    "$CEBOX" report --format json "$dir" > "$TMP/json" 2> "$TMP/rerr"
    rst=$?
    printf 'child\nchild again\nparent\n' > "$TMP/own.want"
    [ "$st" -eq 0 ] && [ "$rst" -eq 0 ] && grep -q "^failed 5$" "$TMP/out" &&
        grep -q "^log fd high, close-on-exec$" "$TMP/out" && grep -q "^pipe 3,4 intact$" "$TMP/out" &&
        cmp -s "$dir.own" "$TMP/own.want" &&
        python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["errors"] == [], d["errors"]
procs = sorted(d["processes"], key=lambda p: p["forked"])
assert len(procs) == 2, len(procs)
parent, child = procs
assert not parent["forked"] and child["forked"] and child["ppid"] == parent["pid"]
assert sum(s["count"] for s in parent["oom"]) == 5 and parent["summary"]["failed"] == 5
assert all(s["reasons"] == ["too-large"] for s in parent["oom"] + child["oom"])
assert sum(s["count"] for s in child["oom"]) == 1
' "$TMP/json"
}
if steal "$TMP/fd/st"; then
    ok "dup2 over the log, a forked child, close_range, a pipe on libunwind's old numbers: all 6 failures logged, undamaged; the program's file and pipe are its own"
else
    bad "dup2 over the log, a forked child, close_range (exit $st, report exit $rst)"
    show "$TMP/out"; show "$TMP/err"; show "$TMP/rerr"; od -c "$TMP/fd/st.own" | head -5 | sed 's/^/#   /'
fi
if steal "$TMP/fd/lo" 16; then
    ok "the same under ulimit -n 16: the log's number stays below the limit"
else
    bad "the same under ulimit -n 16 (exit $st, report exit $rst)"; show "$TMP/out"; show "$TMP/err"; show "$TMP/rerr"
fi

# ---- settings and defaults
mkdir -p "$TMP/cwd"
(cd "$TMP/cwd" && "$ABS/cebox" run --slot-size 1M "$ABS/tests/programs/oom_chain" malloc) > /dev/null 2> "$TMP/err"
check "without --out: the summary says how to record stacks" grep -q "run with --out DIR to record their call stacks" "$TMP/err"
check "without --out: no file is written" test -z "$(ls "$TMP/cwd")"
"$CEBOX" run --quiet --slot-size 1M --stack-depth 2 --out "$TMP/d2" "$P/oom_chain" malloc > /dev/null 2>&1
"$CEBOX" report "$TMP/d2" > "$TMP/text"
if in_order "$TMP/text" "^    #0 .*chain_level3" "^    #1 .*chain_level2" "^  slot at the first failure"; then
    ok "--stack-depth 2 keeps two frames"
else
    bad "--stack-depth 2 keeps two frames"; show "$TMP/text"
fi
"$CEBOX" settings --stack-depth 0 > /dev/null 2> "$TMP/rerr"; st=$?
check "--stack-depth refuses 0 (exit 2, one line)" sh -c "test $st -eq 2 && grep -q \"CEBOX_STACK_DEPTH='0' is not valid; accepted: a whole number from 1 to 128\" '$TMP/rerr'"
check "--stack-depth 128 is accepted" sh -c "'$CEBOX' settings --stack-depth 128 | grep -q 'CEBOX_STACK_DEPTH=128	(set)'"

# ---- usage
"$CEBOX" report > /dev/null 2>&1; check "no log given: exit 2" test $? -eq 2
"$CEBOX" report --format xml "$TMP/m" > /dev/null 2> "$TMP/rerr"; st=$?
check "bad --format: exit 2, one line" sh -c "test $st -eq 2 && grep -q \"format 'xml' is not valid; accepted: text, json, folded or html\" '$TMP/rerr'"
mkdir -p "$TMP/empty"
"$CEBOX" report "$TMP/empty" > /dev/null 2> "$TMP/rerr"; st=$?
check "a directory without logs: exit 2, says how to record" sh -c "test $st -eq 2 && grep -q 'no event logs' '$TMP/rerr'"
"$CEBOX" report "$TMP/nothing-here" > /dev/null 2>&1; check "a missing path: exit 2" test $? -eq 2

# A size that needs no rounding is printed once: "size 4000 bytes".
rm -rf "$TMP/small"; mkdir "$TMP/small"
"$CEBOX" run --quiet --out "$TMP/small" --fail-nth 1 --fail-size-min 4000 --fail-size-max 4000 "$P/hog" 8 > /dev/null 2>&1
"$CEBOX" report "$TMP/small" > "$TMP/text" 2>&1
check "text: a small size printed once" grep -q "^site 1: 1 failure, malloc family, size 4000 bytes\$" "$TMP/text"

finish
