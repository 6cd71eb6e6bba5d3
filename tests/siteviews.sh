#!/bin/sh
# siteviews.sh - the views of the live set by allocation site (`cebox run
# --leaks --out`; tests/programs/siteviews.c knows every site's bytes):
#  - growth: samples at a failure and at the exit with the live set then;
#    a site that loses 1000 bytes a step grows steadily, by exactly
#    its blocks, at a rate that fills the slot's free blocks and the free
#    RAM in the time the report gives; a site that churns does not grow;
#  - the peak view: the live set at the heap's peak (40 000 bytes: 30 000 at
#    peak_a, 10 000 at peak_b), not at exit;
#  - pinning: small long-lived blocks among short-lived large buffers are
#    the only thing in the heap's regions: their site pins all of them, its
#    bytes are the regions' committed bytes but its own, and without it the
#    whole slot would be one free run;
#  - pinning at the peak (the slot's least free run): a program that frees
#    everything before exit has no pinning site at exit, while the view at
#    its least free run names the long-lived site as the top pinner;
#  - reservations still held at exit (mmap): classified by the pointers
#    to them, one given back not reported, one given back in part still;
#  - folded stacks of failures, leaks, the peak and pinning, under a
#    name[pid] root; a bad --folded-of; nothing of it without --out.
set -u
B="${top_builddir:-.}"
CEBOX="$B/cebox"
P="$B/tests/programs"
. "${top_srcdir:-.}/tests/testlib.sh"
# The slot starts empty here (--no-occupy): the figures below are those
# of the program's own reservations; tests/occupancy.sh covers the image,
# DLLs and stacks a device would add.

# views NAME ARGS...: runs siteviews ARGS with --leaks --out $TMP/NAME
# (a tick sample every 5 ms), its JSON report in $TMP/NAME.json
views() {
    name=$1
    shift
    mkdir -p "$TMP/$name"
    "$CEBOX" run --no-occupy --leaks --sample-interval 5 --out "$TMP/$name" "$P/siteviews" "$@" > /dev/null 2> "$TMP/$name.err"
    "$CEBOX" report --format json "$TMP/$name" > "$TMP/$name.json"
}

# expect NAME RUN PYTHON: the check (an expression over `p`, the run's
# only process, `fn(stack)` a stack's innermost function, `page`) holds
expect() {
    name=$1 which=$2 expr=$3
    if python3 - "$TMP/$which.json" "$expr" > "$TMP/why" 2>&1 <<'PY'
import json, os, sys
p = json.load(open(sys.argv[1]))["processes"][0]
page = os.sysconf("SC_PAGE_SIZE")
def fn(stack):
    return stack[0]["function"] if stack else None
def sites(view):
    return [(fn(s["stack"]),) + tuple(v for k, v in s.items() if k != "stack") for s in view["sites"]]
ok = eval("(" + sys.argv[2] + ")")
if not ok:
    print(json.dumps({k: p.get(k) for k in ("growth", "peak", "pinning")})[:1500])
sys.exit(0 if ok else 1)
PY
    then ok "$name"; else bad "$name"; sed 's/^/#   /' "$TMP/why" | head -8; fi
}

# ---- growth
views grow grow 12
expect "growth: slow_leak grew steadily to 12000 bytes in 12 blocks, one sample a step or more" grow \
    '[(g["bytes"], g["blocks"], g["steady"]) for g in p["growth"]["sites"] if fn(g["stack"]) == "slow_leak"] == [(12000, 12, True)]
     and p["growth"]["samples"] >= 12 and p["growth"]["sites"][0]["points"] >= 6'
expect "growth: the rate is its bytes over its time, about 1000 bytes per 20 ms step" grow \
    'all(abs(g["bytes_per_s"] - (g["bytes"] - g["first_bytes"]) / (g["t_last"] - g["t_first"])) < 1e-3 * g["bytes_per_s"]
         and 5000 < g["bytes_per_s"] < 60000 for g in p["growth"]["sites"][:1])'
expect "growth: it fills the slot's free blocks (512 - 1 - reserved at exit) and the free RAM at that rate" grow \
    'all(g["slot_free_bytes"] == (512 - 1 - p["timeline"][-1]["slot_reserved_blocks"]) * 65536
         and g["ram_free_bytes"] == p["timeline"][-1]["ram_free_bytes"]
         and abs(g["slot_fill_s"] * g["bytes_per_s"] / g["slot_free_bytes"] - 1) < 1e-5
         and abs(g["ram_fill_s"] * g["bytes_per_s"] / g["ram_free_bytes"] - 1) < 1e-5 for g in p["growth"]["sites"][:1])'
expect "growth: churn_block (allocated and freed at once) never grows steadily" grow \
    'not any(g["steady"] for g in p["growth"]["sites"] if fn(g["stack"]) == "churn_block")'
"$CEBOX" report "$TMP/grow" > "$TMP/grow.text"
if grep -q "^growing site 1: +[0-9.]* [KB]* in [0-9.]* s (12 blocks now), at [0-9.]* KB/s this site fills the remaining [0-9.]* MB of the slot in .* and the [0-9.]* MB of free device RAM in " "$TMP/grow.text" &&
    grep -A1 "^growing site 1" "$TMP/grow.text" | grep -q "slow_leak at .*siteviews.c:[0-9]*$"; then
    ok "growth in text: the rate, the slot and the RAM it would fill and when, the stack"
else
    bad "growth in text: the rate, the slot and the RAM it would fill and when, the stack"; grep -A2 "leak growth" "$TMP/grow.text" | sed 's/^/#   /'
fi

# a failure injected into slow_leak's third call: a growth sample right
# at it (two blocks live), and the exit's (four, of five steps)
mkdir -p "$TMP/gfail"
"$CEBOX" run --no-occupy --leaks --out "$TMP/gfail" --fail-size-min 1000 --fail-size-max 1000 --fail-nth 3 "$P/siteviews" grow 5 > /dev/null 2>&1
"$CEBOX" report --format json "$TMP/gfail" > "$TMP/gfail.json"
expect "growth: a sample at the failure (2000 bytes in 2 blocks live) and at the exit (4000 in 4)" gfail \
    '[(s["live_bytes"], s["live_blocks"]) for s in p["growth"]["series"] if s["sample"] == "failure"] == [(2000, 2)]
     and [(s["live_bytes"], s["live_blocks"]) for s in p["growth"]["series"] if s["sample"] == "exit"] == [(4000, 4)]
     and len(p["oom"]) == 1'

# ---- the peak view
views peak peak
expect "peak: 40000 bytes in 15 blocks, the highest the live set reached, 30000 bytes at exit" peak \
    '(p["peak"]["live_bytes"], p["peak"]["live_blocks"], p["peak"]["max_live_bytes"]) == (40000, 15, 40000)
     and p["leak_totals"]["reachable"]["bytes"] == 30000'
expect "peak: by site, peak_a 30000 in 10 and peak_b 10000 in 5; after_peak not there" peak \
    '[(fn(s["stack"]), s["bytes"], s["blocks"]) for s in p["peak"]["sites"]] == [("peak_a", 30000, 10), ("peak_b", 10000, 5)]
     and (p["peak"]["other_bytes"], p["peak"]["other_blocks"]) == (0, 0)'

expect "pinning with two sites in one region: the region is shared, no site pins it; every committed page is one site's, shared or empty" peak \
    '(p["pinning"]["regions"], p["pinning"]["shared_regions"]) == (1, 1) and all(s["regions"] == 0 for s in p["pinning"]["sites"])
     and sum(s["pages"] for s in p["pinning"]["sites"]) + p["pinning"]["shared_pages"] + p["pinning"]["empty_pages"] == p["pinning"]["committed_pages"]
     and sorted(fn(s["stack"]) for s in p["pinning"]["sites"]) == ["after_peak", "peak_b"] and p["pinning"]["shared_pages"] >= 1'

# ---- pinning: 12 rounds of a 90000-byte buffer and a 7000-byte block kept
views pin pin 12 90000 7000
expect "pinning: keep_small is the top (and only) pinning site, of every heap region (3 blocks each)" pin \
    '[fn(s["stack"]) for s in p["pinning"]["sites"]] == ["keep_small"] and p["pinning"]["sites"][0]["regions"] ==
     p["pinning"]["regions"] and p["pinning"]["regions"] * 3 == p["summary"]["peak_reserved_blocks"] and p["pinning"]["regions"] >= 4'
expect "pinning: its bytes are the regions committed pages but its own 12 x 7000 bytes; its pages the rest of them" pin \
    'p["pinning"]["sites"][0]["bytes"] == p["pinning"]["committed_pages"] * page - 12 * 7000
     and p["pinning"]["sites"][0]["pages"] + p["pinning"]["empty_pages"] == p["pinning"]["committed_pages"]
     and 12 * 2 <= p["pinning"]["sites"][0]["pages"] <= 12 * 3 and p["pinning"]["shared_pages"] == 0'
expect "pinning: it splits the slot: without it the largest free run is the whole slot (511 blocks), now 511 - regions" pin \
    'p["pinning"]["sites"][0]["largest_free_run_without_blocks"] == 511
     and p["pinning"]["largest_free_run_blocks"] == 511 - 3 * p["pinning"]["regions"]'
"$CEBOX" report "$TMP/pin" > "$TMP/pin.text"
if grep -q "^pinning site 1: .* committed and free kept by its blocks: [0-9]* regions, [0-9]* pages; it splits the slot's free space: without its regions the largest free run would be 511 blocks" "$TMP/pin.text"; then
    ok "pinning in text"
else
    bad "pinning in text"; grep -A2 "^pinning" "$TMP/pin.text" | sed 's/^/#   /'
fi

# 200 rounds of small blocks: more live blocks than the sort by address
# leaves to heapsort (64), for the walks and for the classification
views pinmany pin 200 2000 100
expect "pinning with 200 blocks sorted by address: keep_small pins every region, its bytes all but its 200 x 100; all reachable" pinmany \
    '[fn(s["stack"]) for s in p["pinning"]["sites"]] == ["keep_small"] and p["pinning"]["sites"][0]["regions"] == p["pinning"]["regions"]
     and p["pinning"]["sites"][0]["bytes"] == p["pinning"]["committed_pages"] * page - 200 * 100
     and p["leak_totals"]["reachable"]["blocks"] == 200 and p["leak_totals"]["definite"]["blocks"] == 0'

# ---- pinning at the peak (the slot's least free run): pin's rounds, then
# churn at the least free run, then keep_small's blocks freed too: the exit
# view has no site, the peak's names keep_small as the pinner of every region
views pinfree pinfree 12 20000
expect "pinning at exit after everything was freed: no site, every committed page empty" pinfree \
    'p["pinning"]["when"] == "exit" and p["pinning"]["sites"] == [] and p["pinning"]["empty_pages"] == p["pinning"]["committed_pages"]'
expect "pinning at the peak: taken at the least free run (511 - 3 x regions), before the exit's" pinfree \
    'p["pinning_peak"]["when"] == "least_free_run" and p["pinning_peak"]["regions"] >= 4
     and p["pinning_peak"]["largest_free_run_blocks"] == 511 - 3 * p["pinning_peak"]["regions"] == p["headroom"]["min_largest_free_run_blocks"]
     and p["pinning_peak"]["t"] < p["pinning"]["t"]'
expect "pinning at the peak: keep_small alone pins every region, its bytes all but its 12 x 7000; without it the run is 511" pinfree \
    '[fn(s["stack"]) for s in p["pinning_peak"]["sites"]] == ["keep_small"]
     and p["pinning_peak"]["sites"][0]["regions"] == p["pinning_peak"]["regions"] and p["pinning_peak"]["shared_regions"] == 0
     and p["pinning_peak"]["sites"][0]["bytes"] == p["pinning_peak"]["committed_pages"] * page - 12 * 7000
     and p["pinning_peak"]["sites"][0]["largest_free_run_without_blocks"] == 511'
"$CEBOX" report "$TMP/pinfree" > "$TMP/pinfree.text"
if grep -q "^pinning at the peak (the slot's smallest largest free run, at [0-9.]* s): [0-9]* heap regions" "$TMP/pinfree.text" &&
    grep -A2 "^pinning at the peak" "$TMP/pinfree.text" | grep -q "^pinning site 1: .* it splits the slot's free space: without its regions the largest free run would be 511 blocks" &&
    grep -q "^pinning at exit: .*; no site pins any$" "$TMP/pinfree.text"; then
    ok "pinning at the peak in text, before the exit's"
else
    bad "pinning at the peak in text, before the exit's"; grep -A2 "^pinning" "$TMP/pinfree.text" | sed 's/^/#   /'
fi
# the pin run above takes fewer frees than a second walk needs: its view is
# the first free's, while the big buffers were live (shared regions)
expect "pinning at the peak with too few frees for a second walk: the first free's view, the regions shared" pin \
    'p["pinning_peak"]["shared_regions"] >= 1 and p["pinning_peak"]["largest_free_run_blocks"] == p["pinning"]["largest_free_run_blocks"]'

# ---- reservations the program still holds at exit (mmap)
views maps maps
maps_expr='sorted((l["kind"], l["what"], l["bytes"], l["charged_bytes"], l["blocks"], l["stack"][1]["function"])
     for l in p["leaks"] if l["what"] == "mapping")'
expect "mappings: map_kept reachable (3 blocks), map_lost definite (1), map_part possible (4, a page given back); map_gone not there" maps \
    "$maps_expr"' == [("definite", "mapping", 65536, 65536, 1, "map_lost"), ("possible", "mapping", 262144, 262144, 1, "map_part"),
                     ("reachable", "mapping", 196608, 196608, 1, "map_kept")]'
expect "mappings: the totals count them with the heap's blocks" maps \
    'p["leak_totals"]["definite"]["bytes"] == 65536 + sum(l["bytes"] for l in p["leaks"] if l["kind"] == "definite" and l["what"] == "heap")'
"$CEBOX" report "$TMP/maps" > "$TMP/maps.text"
if grep -q "^leak [0-9]: definitely lost, 64.0 KB in 1 reservation (mmap or VirtualAlloc, slot blocks 64.0 KB)" "$TMP/maps.text"; then
    ok "mappings in text: a reservation, its slot blocks"
else
    bad "mappings in text"; grep "^leak" "$TMP/maps.text" | sed 's/^/#   /'
fi

# ---- folded stacks
pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["processes"][0]["pid"])' "$TMP/peak.json")
"$CEBOX" report --format folded --folded-of peak "$TMP/peak" > "$TMP/fold.peak"
if grep -qx "siteviews\[$pid\];_start;__libc_start_main;__libc_start_call_main;main;peak;peak_a 30000" "$TMP/fold.peak" &&
    grep -q ";peak_b 10000$" "$TMP/fold.peak" && [ "$(wc -l < "$TMP/fold.peak")" -eq 2 ]; then
    ok "folded --folded-of peak: the peak's bytes per stack, under siteviews[PID]"
else
    bad "folded --folded-of peak"; sed 's/^/#   /' "$TMP/fold.peak"
fi
"$CEBOX" report --format folded --folded-of leaks "$TMP/peak" > "$TMP/fold.leaks"
if grep -q "^siteviews\[$pid\];.*;after_peak 20000$" "$TMP/fold.leaks" && grep -q "^siteviews\[$pid\];.*;peak_b 10000$" "$TMP/fold.leaks"; then
    ok "folded --folded-of leaks: the bytes never freed per stack"
else
    bad "folded --folded-of leaks"; sed 's/^/#   /' "$TMP/fold.leaks"
fi
"$CEBOX" report --format folded --folded-of=pinning "$TMP/pin" > "$TMP/fold.pin"
if [ "$(wc -l < "$TMP/fold.pin")" -eq 1 ] && grep -q "^siteviews\[[0-9]*\];.*;pin;keep_small [0-9]*$" "$TMP/fold.pin"; then
    ok "folded --folded-of pinning: the bytes pinned per stack"
else
    bad "folded --folded-of pinning"; sed 's/^/#   /' "$TMP/fold.pin"
fi
"$CEBOX" report --format folded --folded-of sizes "$TMP/pin" > /dev/null 2> "$TMP/fold.err"
st=$?
if [ $st -eq 2 ] && grep -q "folded-of 'sizes' is not valid; accepted: failures, leaks, peak or pinning" "$TMP/fold.err"; then
    ok "a bad --folded-of: exit 2, one line"
else
    bad "a bad --folded-of: exit 2, one line (status $st)"; sed 's/^/#   /' "$TMP/fold.err"
fi

# ---- without --out nothing is sampled; without --leaks no views
mkdir -p "$TMP/noleaks"
"$CEBOX" run --no-occupy --out "$TMP/noleaks" "$P/siteviews" peak > /dev/null 2>&1
"$CEBOX" report --format json "$TMP/noleaks" > "$TMP/noleaks.json"
expect "without --leaks: growth, peak and pinning are null" noleaks \
    'p["growth"] is None and p["peak"] is None and p["pinning"] is None and p["pinning_peak"] is None'

finish
