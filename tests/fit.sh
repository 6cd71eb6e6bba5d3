#!/bin/sh
# fit.sh - `cebox fit`: the smallest slot and device RAM a program still
# exits the same in.  tests/programs/hog maps N blocks in one mmap:
#  - the slot found for 33 blocks is exactly 13 blocks more than for 20,
#    and so is the RAM (the mapping's pages are committed at once);
#  - at the slot found it exits 0, one block less it fails; the same for
#    the RAM and one page less;
#  - text output: the sizes in blocks and pages, the margin to 32 MB.
set -u
B="${top_builddir:-.}"
CEBOX="$B/cebox"
P="$B/tests/programs"
. "${top_srcdir:-.}/tests/testlib.sh"

num() { grep -o "\"$1\": [0-9]*" | sed 's/.*: //'; }

"$CEBOX" fit --format json -- "$P/hog" mmap 1280 >"$TMP/20" 2>&1
"$CEBOX" fit --format json -- "$P/hog" mmap 2112 >"$TMP/33" 2>&1
BAD_SHOW="$TMP/20 $TMP/33"
s20=$(num slot_size <"$TMP/20"); s33=$(num slot_size <"$TMP/33")
r20=$(num ram <"$TMP/20"); r33=$(num ram <"$TMP/33")
if [ -n "$s20" ] && [ -n "$s33" ] && [ $((s33 - s20)) -eq $((13 * 65536)) ] && [ $((s20 % 65536)) -eq 0 ]; then
    ok "slot: 13 more blocks for 13 more blocks mapped ($s20, $s33)"
else
    bad "slot: 13 more blocks for 13 more blocks mapped ($s20, $s33)"
fi
if [ -n "$r20" ] && [ -n "$r33" ] && [ $((r33 - r20)) -eq $((13 * 65536)) ] && [ $((r20 % 4096)) -eq 0 ]; then
    ok "RAM: 832 KB more for 13 more blocks committed ($r20, $r33)"
else
    bad "RAM: 832 KB more for 13 more blocks committed ($r20, $r33)"
fi
# The edge: the sizes found work, one step less does not.
runs() { "$CEBOX" run --quiet "$@" -- "$P/hog" mmap 2112 >/dev/null 2>&1; echo $?; }
if [ "$(runs --slot-size "$s33")" = 0 ] && [ "$(runs --slot-size $((s33 - 65536)))" = 1 ]; then
    ok "at the slot found it fits, one block less it does not"
else
    bad "at the slot found it fits, one block less it does not"
fi
if [ "$(runs --ram "$r33")" = 0 ] && [ "$(runs --ram $((r33 - 4096)))" = 1 ]; then
    ok "at the RAM found it fits, one page less it does not"
else
    bad "at the RAM found it fits, one page less it does not"
fi
"$CEBOX" fit -- "$P/hog" mmap 2112 >"$TMP/text" 2>&1
BAD_SHOW="$TMP/text"
if grep -q "exits with status 0 with room to spare (slot 32.0 MB, RAM 64.0 MB)" "$TMP/text" &&
    grep -q "^smallest slot: .* ($((s33 / 65536)) blocks of 64 KB), margin to 32 MB: " "$TMP/text" &&
    grep -q "^smallest RAM: .* ($((r33 / 4096)) pages of 4 KB), margin to 32 MB: " "$TMP/text"; then
    ok "text: both sizes with their margin"
else
    bad "text: both sizes with their margin"
fi
if "$CEBOX" fit >/dev/null 2>&1; then bad "fit without a program is refused"; else ok "fit without a program is refused"; fi
finish
