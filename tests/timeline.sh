#!/bin/sh
# timeline.sh - fragmentation over time: `cebox run --out` samples each
# process's slot, heap and RAM (--sample-interval), the target adds a
# sample at each failure and at exit, and `cebox report` shows them (text
# table, sparklines, JSON "timeline" and "headroom").
#  - tests/programs/fragment fragments a 64-block slot on purpose: its
#    largest free run falls round after round while its free space stays
#    high, then a 20-block request fails for fragmentation (with --ticks
#    it waits for cebox run's ticks to sample each round and its end, so
#    a loaded machine's late ticks miss nothing);
#  - --sample-interval 0: the failure's and the exit's samples only;
#  - the slot maps cebox run samples when they change (record 13): one a
#    round for fragment, one (or a few at its start) for a steady program,
#    none past --log-limit.
set -u
B="${top_builddir:-.}"
CEBOX="$B/cebox"
P="$B/tests/programs"
. "${top_srcdir:-.}/tests/testlib.sh"

# A field of every JSON timeline entry, one per line, in time order.
field() { grep -o "\"$1\": [^,}]*" "$2" | sed 's/.*: //; s/"//g'; }

D="$TMP/frag"
mkdir "$D"
"$CEBOX" run --quiet --slot-size 4M --sample-interval 20 --out "$D" -- "$P/fragment" --ticks 8 20 25 >"$TMP/out" 2>&1
rc=$?
"$CEBOX" report --format json "$D" >"$TMP/json" 2>"$TMP/err"
"$CEBOX" report "$D" >"$TMP/text" 2>&1
BAD_SHOW="$TMP/out $TMP/text"
if [ $rc -eq 0 ] && grep -qx "big: failed" "$TMP/out" && ! grep -q "no tick" "$TMP/out"; then
    ok "fragment ran, each round sampled, its big request failed"
else bad "fragment ran, each round sampled, its big request failed (rc $rc)"; fi

# Only the timeline's entries (they alone carry "largest_free_run_blocks"),
# up to the failure (then the program unmaps its small buffers).
grep '"largest_free_run_blocks"' "$TMP/json" >"$TMP/all"
sed '/"sample": "failure"/q' "$TMP/all" >"$TMP/tl.raw"
# A tick can land between a round's mmap and munmap of its short-lived
# buffer (seen once on a fast machine): that sample holds 3 to 10 blocks
# more than every later one, which no sample after the buffer's round can.
# Such samples are the program's doing, not cebox's, so they are dropped
# before the checks below; a sample that holds more than the later minimum
# for any other reason would still be caught by the checks on the rest.
awk '{ line[NR] = $0; match($0, /"slot_reserved_blocks": [0-9]+/);
       res[NR] = substr($0, RSTART + 24, RLENGTH - 24) + 0 }
     END { low = 1e9; for (i = NR; i >= 1; i--) { keep[i] = res[i] <= low; if (res[i] < low) low = res[i] }
           for (i = 1; i <= NR; i++) if (keep[i]) print line[i] }' "$TMP/tl.raw" >"$TMP/tl"
dropped=$(( $(grep -c . "$TMP/tl.raw") - $(grep -c . "$TMP/tl") ))
[ "$dropped" -le 2 ] && ok "at most 2 samples caught a round's short-lived buffer ($dropped)" ||
    bad "at most 2 samples caught a round's short-lived buffer ($dropped did)"
runs=$(field largest_free_run_blocks "$TMP/tl")
reserved=$(field slot_reserved_blocks "$TMP/tl")
kinds=$(field sample "$TMP/tl")
count=$(grep -c . "$TMP/tl.raw")
first=$(printf '%s\n' "$runs" | head -1)
low=$(printf '%s\n' "$runs" | sort -n | head -1)
maxres=$(printf '%s\n' "$reserved" | sort -n | tail -1)
# fragment --ticks waits for two ticks after each of its 8 rounds: at
# least 16 ticks, and the failure's sample.
if [ "$count" -ge 17 ]; then ok "timeline has $count samples"; else bad "timeline has $count samples"; fi
# The slot has 64 blocks; at the start nearly all of it is one free run,
# at the end the longest is under 12 blocks (the holes are 2 to 9 blocks).
# (The first figure is only asked to be far above the last: a tick may
# come before the first round, or in its middle.)
if [ "$first" -ge 40 ] && [ "$low" -le 11 ] && [ "$low" -ge 1 ]; then
    ok "largest free run falls from $first to $low blocks"
else
    bad "largest free run falls ($first to $low blocks)"
fi
# It never rises: each large buffer goes past every hole.
if printf '%s\n' "$runs" | awk 'NR > 1 && $1 > prev { exit 1 } { prev = $1 }'; then
    ok "largest free run never rises"
else
    bad "largest free run never rises: $(echo $runs)"
fi
# The blocks the image, the libraries' data and the main stack took before
# main (occupancy.c: 5 on Debian 12, as many as this machine's libc needs),
# from the summary's "slot at" line; the program's own figures come on top.
occ=$(sed -n 's/.*slot at .*: image \([0-9]*\) blocks*, DLLs [0-9]* XIP (data, \([0-9]*\) blocks*) and [0-9]* in RAM (\([0-9]*\) blocks*), stacks \([0-9]*\) blocks* each (peak \([0-9]*\)).*/\1 \2 \3 \4 \5/p' "$TMP/text" |
    awk '{ print $1 + $2 + $3 + $4 * $5 }')
[ -n "$occ" ] || occ=999
# Free space stays high: never more than 12 blocks of the program's reserved
# between samples (63 usable blocks: over 50 free at every sample, less the
# occupants').
if [ "$maxres" -le $((12 + occ)) ] && [ "$maxres" -ge $((8 + occ)) ]; then
    ok "free space stays high (at most $maxres of 64 blocks reserved, $occ of them the image's, libraries' and stack's)"
else bad "free space stays high ($maxres reserved, $occ by the occupants)"; fi
if [ "$(printf '%s\n' "$kinds" | tail -1)" = failure ]; then
    ok "a sample at the failure"
else
    bad "a sample at the failure: $(echo $kinds)"
fi
# After the failure the small buffers go: cebox run's last tick, from the
# figures the target publishes, matches the target's own exit sample (the
# whole slot free again: 63 blocks, the heap's region aside).  fragment
# --ticks exits only once a tick has sampled it after its unmapping (it
# once exited 25 ms after, before any tick on a loaded machine).
last_tick=$(grep '"sample": "tick"' "$TMP/all" | tail -1 | grep -o '"slot_reserved_blocks": [0-9]*, "slot_committed_bytes": [0-9]*, "largest_free_run_blocks": [0-9]*')
at_exit=$(grep '"sample": "exit"' "$TMP/all" | grep -o '"slot_reserved_blocks": [0-9]*, "slot_committed_bytes": [0-9]*, "largest_free_run_blocks": [0-9]*')
exit_run=$(echo "$at_exit" | sed 's/.*: //')
if [ -n "$at_exit" ] && [ "$last_tick" = "$at_exit" ] && [ "$(grep -c '"sample": "exit"' "$TMP/all")" -eq 1 ] &&
    [ "$exit_run" -ge 55 ]; then
    ok "the last tick matches the exit sample ($at_exit)"
else
    bad "the last tick ($last_tick) matches the exit sample ($at_exit)"
fi
# The process heap's figures: at exit those of the summary (printf's buffer).
heap_exit=$(grep '"sample": "exit"' "$TMP/all" | grep -o '"heap_live_bytes": [0-9]*' | sed 's/.*: //')
heap_sum=$(grep -o '"heap_live_bytes": [0-9]*, "heap_live_blocks"' "$TMP/json" | sed 's/.*: \([0-9]*\),.*/\1/')
if [ -n "$heap_exit" ] && [ "$heap_exit" -gt 0 ] && [ "$heap_exit" = "$heap_sum" ]; then
    ok "heap live at exit: $heap_exit bytes, as the summary says"
else
    bad "heap live at exit: $heap_exit bytes, summary $heap_sum"
fi
# The failure's own sample: 20 blocks asked for, fewer in one run.
fail_run=$(grep '"sample": "failure"' "$TMP/tl" | head -1 | grep -o '"largest_free_run_blocks": [0-9]*' | sed 's/.*: //')
if grep -q '"reasons": \["fragmented"\]' "$TMP/json" && [ -n "$fail_run" ] && [ "$fail_run" -lt 20 ]; then
    ok "the failure is fragmentation, with a largest run of $fail_run blocks"
else
    bad "the failure is fragmentation ($fail_run)"
fi
# Headroom: the target's running minimum, never above what the samples saw;
# the peak slot use counts the large buffer in flight (over the samples').
hmin=$(grep -o '"min_largest_free_run_blocks": [0-9]*' "$TMP/json" | sed 's/.*: //')
hpeak=$(grep -o '"peak_reserved_blocks": [0-9]*' "$TMP/json" | tail -1 | sed 's/.*: //')
if [ -n "$hmin" ] && [ "$hmin" -le "$low" ] && [ "$hmin" -ge 1 ] && [ "$hpeak" -gt "$maxres" ] && [ "$hpeak" -le $((22 + occ)) ]; then
    ok "headroom: smallest largest free run $hmin, peak $hpeak blocks"
else
    bad "headroom: smallest largest free run $hmin (samples $low), peak $hpeak (samples $maxres)"
fi
if grep -q "^timeline: $(grep -c . "$TMP/all") samples" "$TMP/text" && grep -q "largest free run (blocks) .* $first -> " "$TMP/text" &&
    grep -q "^worst moment: largest free run $hmin blocks (.*) at [0-9.]* s; peak slot use $hpeak of 64 blocks reserved" "$TMP/text"; then
    ok "text: table, sparklines and the worst moment"
else
    bad "text: table, sparklines and the worst moment"
fi
if grep -q "headroom: smallest largest free run $hmin blocks" "$D"/cebox-*.summary; then
    ok "the exit summary gives the worst moment"
else
    bad "the exit summary gives the worst moment"
fi

# --sample-interval 0: the target's own samples only.
D0="$TMP/zero"
mkdir "$D0"
"$CEBOX" run --quiet --slot-size 4M --sample-interval 0 --out "$D0" -- "$P/fragment" 8 20 5 >/dev/null 2>&1
"$CEBOX" report --format json "$D0" | grep '"largest_free_run_blocks"' >"$TMP/tl0"

if [ "$(field sample "$TMP/tl0" | tr '\n' ' ')" = "failure exit " ]; then
    ok "--sample-interval 0: the failure's and the exit's samples"
else
    bad "--sample-interval 0: $(field sample "$TMP/tl0" | tr '\n' ' ')"
fi

# The heap's free space, a sample at each state change and at the peak:
# heapholes leaves 32 holes of 10000 bytes in its heap, holds a 6 MB block
# for 100 ms between two samples 300 ms apart, frees it, and frees the
# rest before it exits; the schedule moves the state away from normal and
# back.
DH="$TMP/holes"
mkdir "$DH"
"$CEBOX" run --quiet --state-schedule 0.1s:low,0.2s:normal --sample-interval 300 --out "$DH" -- "$P/heapholes" \
    >/dev/null 2>&1
"$CEBOX" report --format json "$DH" | grep '"largest_free_run_blocks"' >"$TMP/holes.tl"
num() { grep -o "\"$1\": [0-9]*" | sed 's/.*: //'; }
# The first tick after the sample that holds the 6 MB block (the peak's,
# or a tick's when one came while it was held: on a loaded machine the
# 100 ms can stretch over a tick).
after_peak=$(awk 'held && /"sample": "tick"/ { print; exit }
    { match($0, /"slot_committed_bytes": [0-9]+/); if (substr($0, RSTART + 24, RLENGTH - 24) + 0 >= 6291456) held = 1 }' \
    "$TMP/holes.tl")
items=$(echo "$after_peak" | num heap_free_items)
largest=$(echo "$after_peak" | num heap_largest_free_bytes)
empty=$(echo "$after_peak" | num empty_committed_pages)
if [ -n "$items" ] && [ "$items" -ge 32 ] && [ "$items" -le 40 ] && [ "$largest" -ge 9984 ] && [ "$empty" -ge 32 ]; then
    ok "free space: $items free items, the largest $largest bytes, $empty empty committed pages"
else
    bad "free space: $items free items, the largest $largest bytes, $empty empty committed pages: $after_peak"
fi
exit_items=$(grep '"sample": "exit"' "$TMP/holes.tl" | num heap_free_items)
exit_largest=$(grep '"sample": "exit"' "$TMP/holes.tl" | num heap_largest_free_bytes)
if [ -n "$exit_items" ] && [ "$exit_items" -lt 32 ] && [ "$exit_largest" -gt 100000 ]; then
    ok "everything freed at exit: $exit_items free items, the largest $exit_largest bytes"
else
    bad "everything freed at exit: $exit_items free items, the largest $exit_largest bytes"
fi
peak=$(grep '"sample": "peak"' "$TMP/holes.tl" | num slot_committed_bytes | sort -n | tail -1)
tick_max=$(grep '"sample": "tick"' "$TMP/holes.tl" | num slot_committed_bytes | sort -n | tail -1)
# (A sample tick that came while the block was held shows it itself: then
# a peak sample is written only when a tick between two noted it first.)
if [ -n "$peak" ] && [ "$peak" -ge 6291456 ] && [ "$tick_max" -lt 6291456 ]; then
    ok "a peak sample between two ticks: $peak bytes committed (ticks at most $tick_max)"
elif [ -n "$tick_max" ] && [ "$tick_max" -ge 6291456 ]; then
    ok "a tick came while the 6 MB block was held: $tick_max bytes committed (peak sample: ${peak:-none})"
else
    bad "a peak sample between two ticks: $peak bytes committed (ticks at most $tick_max)"
fi
state_ts=$(grep '"sample": "state"' "$TMP/holes.tl" | grep -o '"t": [0-9.]*' | sed 's/.*: //' | tr '\n' ' ')
line_ts=$(grep 'memory state .* -> ' "$DH/cebox.session" | sed 's/^cebox: \[ *\([0-9.]*\) s\].*/\1/' | tr '\n' ' ')
states=$(grep '"sample": "state"' "$TMP/holes.tl" | grep -o '"state": "[a-z]*"' | sed 's/.*: //; s/"//g' | tr '\n' ' ')
if [ "$(echo "$state_ts" | wc -w)" -eq 2 ] && [ "$(echo "$line_ts" | wc -w)" -eq 2 ] &&
    [ "$states" = "$(grep 'memory state .* -> ' "$DH/cebox.session" | sed 's/.* -> \([a-z]*\),.*/\1/' | tr '\n' ' ')" ] &&
    awk -v a="$state_ts" -v b="$line_ts" 'BEGIN { split(a, x, " "); split(b, y, " ");
        for (i = 1; i <= 2; i++) if (x[i] - y[i] > 0.001 || y[i] - x[i] > 0.001) exit 1 }'; then
    ok "a sample at each state change ($states at $state_ts s, as the session log says)"
else
    bad "a sample at each state change ($states at $state_ts s; session log: $line_ts s)"
fi

# A forked child publishes into a row of its own: the parent, whose heap
# stays small, never shows the child's 2 MB; the child's exit sample does,
# and is its last (the child is a zombie until its parent reaps it).
DF="$TMP/fork"
mkdir "$DF"
"$CEBOX" run --quiet --sample-interval 40 --out "$DF" -- "$P/heapholes" fork >/dev/null 2>&1
"$CEBOX" report --format json "$DF" >"$TMP/fork.json" 2>&1
if python3 - "$TMP/fork.json" <<'PY'
import json, sys
procs = json.load(open(sys.argv[1]))["processes"]
parent = [p for p in procs if not p["forked"]][0]
child = [p for p in procs if p["forked"]][0]
ticks = [x["heap_live_bytes"] for x in parent["timeline"] if x["sample"] == "tick"]
child_exit = [x["heap_live_bytes"] for x in child["timeline"] if x["sample"] == "exit"]
# and no process has a sample after its exit's (a zombie is not sampled)
ends = all(p["timeline"] and p["timeline"][-1]["sample"] == "exit" for p in procs)
sys.exit(0 if len(ticks) >= 5 and max(ticks) < 1 << 20 and child_exit and child_exit[0] >= 2048000 and ends else 1)
PY
then
    ok "a forked child's heap figures go to its own row, not its parent's; nothing sampled after an exit"
else
    bad "a forked child's heap figures go to its own row, not its parent's; nothing sampled after an exit"
fi

# The summary's newer figures in JSON: committed at the peak by kind adds
# up, cebox's own memory is there.
if python3 - "$TMP/fork.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["processes"][0]["summary"]
occupants = (s["peak_committed_image_bytes"] or 0) + (s["peak_committed_stack_bytes"] or 0)
ok = s["peak_committed_heap_bytes"] + s["peak_committed_mapped_bytes"] + occupants == s["peak_committed_bytes"] and \
    s["peak_committed_heap_bytes"] > 0 and s["own_meta_bytes"] > 0 and s["own_mapped_peak_bytes"] is not None
sys.exit(0 if ok else 1)
PY
then
    ok "JSON summary: committed at the peak by kind, cebox's own memory"
else
    bad "JSON summary: committed at the peak by kind, cebox's own memory"
fi

# The slot maps sampled on the timeline (record 13): the fragment run above
# has one per round at least (each round is sampled, --ticks), never fewer
# mappings than the last until the failure; every sample's "map" is the latest sampled map at or
# before it, and the text report counts them.  A program that leaves its
# slot alone (sleep) gets one map for all its samples (or two or three,
# when a tick came during its start).  Past --log-limit
# cebox run writes none: a log filled to 64K by failures gets no map after
# it, while the same run without the limit gets one a round.
if python3 - "$TMP/json" <<'PY'
import json, re, sys
p = json.load(open(sys.argv[1]))["processes"][0]
maps, samples = p["sampled_maps"], p["timeline"]
cells = lambda m: "".join(c * int(n) for c, n in re.findall(r"(\D)(\d+)", m["runs"]))
failed = [s["t"] for s in samples if s["sample"] == "failure"][:1] or [0]
rising = [cells(m).count("C") for m in maps if m["t"] <= failed[0]]  # then the small ones go
ok = len(maps) >= 8 and all(m["cause"] == "sample" and m["blocks"] == 64 and len(cells(m)) == 64 for m in maps) and \
    len(rising) >= 3 and all(b >= a for a, b in zip(rising, rising[1:])) and rising[-1] - rising[0] >= 2
for s in samples:
    before = [i for i, m in enumerate(maps) if m["t"] <= s["t"]]
    ok = ok and s["map"] == (before[-1] if before else None)
sys.exit(0 if ok else 1)
PY
then ok "sampled maps: $(grep -c '"cause": "sample"' "$TMP/json") maps, more mappings round by round, every sample's map the latest before it"
else bad "sampled maps: $(grep -c '"cause": "sample"' "$TMP/json") maps, rising mappings, each sample's map"; fi
if grep -q "^slot maps sampled on the timeline: [0-9]" "$TMP/text"; then ok "the text report counts the sampled maps"
else bad "the text report counts the sampled maps"; fi
DS="$TMP/steady"
mkdir "$DS"
"$CEBOX" run --quiet --sample-interval 20 --out "$DS" -- sleep 0.5 >/dev/null 2>&1
"$CEBOX" report --format json "$DS" >"$TMP/steady.json" 2>&1
nmaps=$(grep -c '"cause": "sample"' "$TMP/steady.json")
nticks=$(grep -c '"sample": "tick"' "$TMP/steady.json")
# (a tick during its start may catch the map before the start is done)
if [ "$nmaps" -ge 1 ] && [ "$nmaps" -le 3 ] && [ "$nticks" -ge 10 ]; then ok "a steady program: $nmaps sampled maps for $nticks ticks"
else bad "a steady program: $nmaps sampled maps for $nticks ticks"; fi
# record 13's end offsets in a log, one per line
map_ends() {
    python3 - "$1" <<'PY'
import struct, sys
d, off = open(sys.argv[1], "rb").read(), 0
while off + 16 <= len(d):
    magic, kind, _, length, _ = struct.unpack("<IHHII", d[off:off + 16])
    if magic != 0x474C4243:
        break
    off += 16 + length
    if kind == 13:
        print(off)
PY
}
for lim in 64K 64M; do
    mkdir "$TMP/lim$lim"
    "$CEBOX" run --quiet --slot-size 4M --log-limit $lim --sample-interval 20 --out "$TMP/lim$lim" -- \
        "$P/fragment" 8 20 40 400 >/dev/null 2>&1
done
over=$(for f in "$TMP"/lim64K/cebox-*.log; do map_ends "$f"; done | awk '$1 > 65536' | wc -l)
limited=$(for f in "$TMP"/lim64K/cebox-*.log; do map_ends "$f"; done | wc -l)
unlimited=$(for f in "$TMP"/lim64M/cebox-*.log; do map_ends "$f"; done | wc -l)
# (cebox run checks the file's size before its write: one map may end past
# the limit when the target appended its own records in between)
if [ "$over" -le 1 ] && [ "$limited" -le 2 ] && [ "$unlimited" -ge 4 ]; then
    ok "--log-limit 64K: $limited sampled maps, $over ending past the limit ($unlimited without it)"
else
    bad "--log-limit 64K: $limited sampled maps, $over past the limit ($unlimited without it)"
fi

# One time origin: the session log (cebox.session) and the report both
# count from the run's start.  The boxed shell waits 0.6 s, then execs hog,
# whose first failure comes right after the device's state fell to low; the
# report puts the failure no earlier than the session log's transition
# (which the log rounds to the millisecond), and both after the wait
# (counted from hog's own start, the failure would be at about 0 s), and
# the failure before the run's end as the test's clock saw it (counted
# from an earlier origin it would come later; on a loaded machine hog may
# take a while from the crossing to its failure, so the transition is no
# bound).
DT="$TMP/origin"
mkdir "$DT"
t0=$(date +%s.%N)
"$CEBOX" run --quiet --ram 2M --sample-interval 0 --out "$DT" -- sh -c "sleep 0.6; exec $P/hog 4096" >/dev/null 2>&1
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.6f", b - a }')
"$CEBOX" report --format json "$DT" >"$TMP/origin.json" 2>&1
fail_t=$(grep -o '"first": {"seconds": [0-9.]*' "$TMP/origin.json" | head -1 | sed 's/.*: //')
state_t=$(grep -m1 'memory state normal -> ' "$DT/cebox.session" | sed 's/^cebox: \[ *\([0-9.]*\) s\].*/\1/')
if [ -n "$fail_t" ] && [ -n "$state_t" ] &&
    awk -v f="$fail_t" -v s="$state_t" -v d="$took" 'BEGIN { exit !(s >= 0.6 && f >= s - 0.0005 && f < d) }' &&
    grep -q '"time_origin": "run"' "$TMP/origin.json"; then
    ok "one time origin: state change at $state_t s (session log), failure at $fail_t s (report), run over by $took s"
else
    bad "one time origin: state change at $state_t s (session log), failure at $fail_t s (report), run over by $took s"
fi
finish
