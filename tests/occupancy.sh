#!/bin/sh
# occupancy.sh - a process occupies its slot as on a device (occupancy.c),
# seen from a real program under cebox run (tests/programs/occupant):
#  - the slot at a device's place (32 MB-aligned, below 2 GB), MAP_32BIT
#    mappings inside it;
#  - the image from block 1 (E), the main stack after it (S), the heap's
#    first region, the system libraries' writable data at the top (D);
#    --no-occupy, --libraries and --stack-size change that;
#  - the seeds' loop of one-page reservations fails where those blocks
#    leave it (about 470 on a device; here 511 less what the map shows);
#  - libraries dlopen'ed later, and given back when dlclose'd;
#  - a thread whose stack finds no block is refused with EAGAIN, and the
#    blocks of joined threads come back; a forked child keeps only the
#    forking thread's.
set -u
B="${top_builddir:-.}"
CEBOX="$B/cebox"
P="$B/tests/programs"
. "${top_srcdir:-.}/tests/testlib.sh"
BAD_SHOW="$TMP/out $TMP/err"

check() { # check NAME COMMAND...: ok when the command succeeds
    name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}
# in_order_lines FILE PATTERN...: consecutive lines of FILE match the
# patterns (grep basic regular expressions), in this order.
in_order_lines() {
    file=$1
    shift
    first=$1
    grep -n -- "$first" "$file" | cut -d: -f1 | while read -r at; do
        i=0 all=1
        for pat in "$@"; do
            sed -n "$((at + i))p" "$file" | grep -q -- "$pat" || { all=0; break; }
            i=$((i + 1))
        done
        [ $all -eq 1 ] && echo yes && break
    done | grep -q yes
}
not_has() { ! grep -q -- "$1" "$2"; }
map_of() { sed -n 's/^map //p' "$TMP/out"; }
count() { printf '%s' "$2" | tr -cd "$1" | wc -c; }

run "$CEBOX" run --summaries none "$P/occupant" map
base=$(sed -n 's/^base //p' "$TMP/out")
if [ -n "$base" ] && [ $((base % 0x2000000)) -eq 0 ] && [ $((base + 0x2000000)) -le $((0x80000000)) ] && [ $((base)) -ge $((0x16000000)) ]; then
    ok "the slot at a device's place ($base: 32 MB-aligned, below 2 GB)"
else bad "the slot at a device's place ($base)"; fi
map=$(map_of)
if printf '%s' "$map" | grep -qE '^-E+SHHH\.+D+$'; then
    ok "image from block 1, main stack, heap, system libraries' data at the top ($(printf '%s' "$map" | cut -c1-8)..., $(count D "$map") DLL blocks)"
else bad "the map's occupants: $map"; fi
used=$(( $(count 'ESHD' "$map") ))

run "$CEBOX" run --summaries none "$P/occupant" loop
loop=$(sed -n 's/^\([0-9]*\) calls succeeded$/\1/p' "$TMP/out")
if [ -n "$loop" ] && [ "$loop" -eq $((511 - used)) ] && [ "$loop" -lt 508 ]; then
    ok "the 512 one-page loop: $loop succeed (511 less the $used blocks the map shows taken)"
else bad "the 512 one-page loop: '$loop' succeed, $used blocks taken"; fi
run "$CEBOX" run --summaries none --libraries all-ram "$P/occupant" loop
ram_loop=$(sed -n 's/^\([0-9]*\) calls succeeded$/\1/p' "$TMP/out")
if [ -n "$ram_loop" ] && [ "$ram_loop" -lt "$loop" ]; then
    ok "with every library a RAM DLL (charged whole): $ram_loop succeed"
else bad "--libraries all-ram: '$ram_loop' succeed (default $loop)"; fi

run "$CEBOX" run --summaries none --no-occupy "$P/occupant" map
check_map() {
    if printf '%s' "$(map_of)" | grep -qE "$2"; then ok "$1"; else bad "$1: $(map_of)"; fi
}
check_map "--no-occupy: the slot starts empty (the heap at block 1)" '^-HHH\.+$'
run "$CEBOX" run --summaries none --no-occupy "$P/occupant" loop
check "--no-occupy: the loop as before (508)" grep -qx "508 calls succeeded" "$TMP/out"
run "$CEBOX" run --summaries none --libraries none "$P/occupant" map
check_map "--libraries none: no DLL" '^-E+SHHH\.+$'
run "$CEBOX" run --summaries none --libraries all-ram "$P/occupant" map
ram=$(count D "$(map_of)")
check_map "--libraries all-ram: libc whole, more blocks than its data ($ram)" '^-E+SHHH\.+DDDDDDDDDD+$'
run "$CEBOX" run --summaries none --stack-size 128K "$P/occupant" map
check_map "--stack-size 128K: two blocks" '^-E+SSHHH\.+D+$'
run "$CEBOX" run --summaries none --stack-size 0 "$P/occupant" map
check_map "--stack-size 0: stacks take nothing" '^-E+HHH\.+D+$'
run "$CEBOX" run --stack-size 1100K "$P/occupant" map
check "--stack-size over 1M is refused (exit 2)" has "CEBOX_STACK_SIZE='1100K' is not valid" "$TMP/err"

# Threads in a 1 MB slot: as many start as free blocks remain, the next one
# gets EAGAIN, and after the joins as many start again.
run "$CEBOX" run --slot-size 1M "$P/occupant" map
free=$(count . "$(map_of)")
run "$CEBOX" run --slot-size 1M "$P/occupant" threads 40
check "1 MB slot: $free threads start (one per free block), the next is refused with EAGAIN" \
    grep -qx "$free threads started, first refused: EAGAIN" "$TMP/out"
check "their blocks come back when they end" grep -qx "$free started again after the joins" "$TMP/out"
check "the summary counts the refused thread and the peak of stacks" \
    has "stacks 1 block each (peak $((free + 1))); threads refused for want of a stack block: 1" "$TMP/err"
check "the summary says where the slot is" has "^cebox:   slot at 0x[0-9a-f]* (below 2 GB, as on a device): image" "$TMP/err"
check "the summary's committed kinds gain images and stacks" \
    has "^cebox:   slot committed at its peak: heap .*, image and DLLs [0-9.]* [KM]B, stacks [0-9.]* [Kb]" "$TMP/err"

# fork: the child has only the forking thread, so only its stack stays.
run "$CEBOX" run --summaries none "$P/occupant" fork 3
pmap=$(sed -n '/^parent/,/^map/s/^map //p' "$TMP/out" | head -1)
cmap=$(sed -n '/^child/,/^map/s/^map //p' "$TMP/out" | head -1)
if [ "$(count S "$pmap")" -eq 4 ] && [ "$(count S "$cmap")" -eq 1 ]; then
    ok "a forked child keeps the forking thread's stack only (parent $(count S "$pmap"), child $(count S "$cmap"))"
else bad "fork: parent's stacks $(count S "$pmap"), child's $(count S "$cmap")"; fi

# dlopen: a library loaded later takes its blocks at the next mmap, and
# gives them back once dlclose'd: a system one its data (XIP), one of the
# build tree whole (a RAM DLL).
dl_maps() { # dl_maps LIB [OPTIONS]
    lib=$1
    shift
    run "$CEBOX" run --summaries none "$@" "$P/occupant" dlopen "$lib"
    before=$(count D "$(sed -n '/^before/,/^map/s/^map //p' "$TMP/out")")
    loaded=$(count D "$(sed -n '/^loaded/,/^map/s/^map //p' "$TMP/out")")
    unloaded=$(count D "$(sed -n '/^unloaded/,/^map/s/^map //p' "$TMP/out")")
}
# A system library the boxed process has not loaded already: neither the
# program nor cebox's own library (a sanitizer build's runtime brings libm
# in with either).
SYSLIB=libm.so.6
if ldd "$P/occupant" "$B/.libs/cebox-preload.so" 2>/dev/null | grep -q 'libm\.so\.6'; then SYSLIB=libresolv.so.2; fi
dl_maps "$SYSLIB"
if [ "$loaded" -eq $((before + 1)) ] && [ "$unloaded" -eq "$before" ]; then
    ok "dlopen of $SYSLIB: its data takes a block ($before -> $loaded DLL blocks), dlclose gives it back ($unloaded)"
else bad "dlopen of $SYSLIB: $before -> $loaded -> $unloaded DLL blocks"; fi
dl_maps "$BUILD_ABS/tests/programs/.libs/deepbind_lib.so"
if [ "$loaded" -eq $((before + 1)) ] && [ "$unloaded" -eq "$before" ]; then
    ok "dlopen of a library of the build tree ($before -> $loaded DLL blocks -> $unloaded)"
else bad "dlopen of a library of the build tree: $before -> $loaded -> $unloaded DLL blocks"; fi
dl_maps "$SYSLIB" --libraries all-ram
if [ "$loaded" -gt $((before + 1)) ] && [ "$unloaded" -eq "$before" ]; then
    ok "--libraries all-ram: a dlopen'ed $SYSLIB charged whole, more than its data's block ($before -> $loaded DLL blocks -> $unloaded)"
else bad "--libraries all-ram, dlopen of $SYSLIB: $before -> $loaded -> $unloaded DLL blocks"; fi

# MAP_32BIT holds: the slot is below 2 GB.
run "$CEBOX" run --summaries none "$P/occupant" low
check "MAP_32BIT: in the slot, below 2 GB" grep -qx "MAP_32BIT below 2 GB, in the slot" "$TMP/out"
# A slot that cannot lie below 2 GB (ce6's 2 GB): the kernel serves it.
run "$CEBOX" run --summaries none --profile ce6 "$P/occupant" low
check "MAP_32BIT with a slot above 2 GB (ce6): below 2 GB, outside the slot" \
    grep -qx "MAP_32BIT below 2 GB, outside the slot" "$TMP/out"

# A report reads the occupancy back from the log.
mkdir "$TMP/d"
"$CEBOX" run --quiet --slot-size 1M --out "$TMP/d" "$P/occupant" threads 40 > /dev/null 2>&1
"$CEBOX" report "$TMP/d" > "$TMP/out" 2>&1
check "cebox report: the occupancy line from the log" has "threads refused for want of a stack block: 1" "$TMP/out"
check "cebox report: the image, the main stack and libc in the slot at the start" in_order_lines "$TMP/out" \
    "^slot at the start: [0-9]* occupants (image, DLLs, main stack)\$" \
    "^  E block[s 0-9-]*1[-,].* committed  .*tests/programs/occupant\$" \
    "^  S block [0-9]*, 1 page committed  the main thread's stack\$"
check "cebox report: libc's writable data as XIP" has "^  D block.* committed  .*/libc\.so\.6 (XIP: its writable data)\$" "$TMP/out"
"$CEBOX" report --format json "$TMP/d" | python3 -c '
import json, sys
occ = json.load(sys.stdin)["processes"][0]["occupants"]
assert occ[0]["kind"] == "image" and occ[0]["first_block"] == 1, occ
assert occ[1]["kind"] == "stack" and occ[1]["committed_pages"] == 1, occ
assert any(o["kind"] == "xip-dll" and o["name"].endswith("/libc.so.6") for o in occ), occ
' && ok "cebox report --format json: the occupants" || bad "cebox report --format json: the occupants"

# libunwind (and liblzma) are cebox's own: loaded only when a stack may be
# recorded, before the occupants are placed, and never charged as DLLs.
# (bash's own maps and summary: cat closes its stderr before its exit, and
# dash leaves without the summary)
run "$CEBOX" run bash -c 'cat /proc/$$/maps; true'
check "without --out, --leaks or a --fail-* rule, libunwind is not loaded" not_has libunwind "$TMP/out"
dlls_plain=$(sed -n 's/.*: image [0-9]* blocks\{0,1\}, \(DLLs .*\), stacks.*/\1/p' "$TMP/err")
mkdir "$TMP/u"
run "$CEBOX" run --out "$TMP/u" bash -c 'cat /proc/$$/maps; true'
check "with --out, libunwind is loaded from the start" has libunwind "$TMP/out"
dlls_out=$(sed -n 's/.*: image [0-9]* blocks\{0,1\}, \(DLLs .*\), stacks.*/\1/p' "$TMP/err")
if [ -n "$dlls_plain" ] && [ "$dlls_plain" = "$dlls_out" ]; then
    ok "with --out, libunwind and liblzma take no DLL blocks ($dlls_out)"
else bad "the DLLs without --out ($dlls_plain) and with it ($dlls_out)"; fi
"$CEBOX" report "$TMP/u" > "$TMP/out" 2>&1
check "cebox report: no occupant is cebox's libunwind or liblzma" not_has "libunwind\|liblzma" "$TMP/out"

finish
