#!/bin/sh
# hardpaths.sh - the preload library's paths that ordinary programs never
# take: calls re-entered from a signal handler while the interrupted thread
# is inside cebox (reenter, and reenter_trap where cebox holds its locks),
# blocks cebox did not hand out (foreign), and mremap's cases compared line
# by line with what the kernel does natively (mremap_cases).  Every run is
# bounded with timeout: a deadlock fails.
set -u
B="${top_builddir:-.}"
CEBOX="$B/cebox"
P="$B/tests/programs"
. "${top_srcdir:-.}/tests/testlib.sh"
BAD_SHOW="$TMP/err"

# run_checks NAME -- COMMAND...: a program that prints its own checks.
run_checks() {
    name=$1
    shift 2
    timeout -k 5 60 "$@" > "$TMP/out" 2> "$TMP/err"
    got=$?
    if [ "$got" -eq 0 ]; then
        ok "$name"
    elif [ "$got" -eq 77 ]; then
        ok "$name # SKIP $(sed -n 's/^# //p' "$TMP/out" | head -1)"
    else
        bad "$name (exit $got$([ "$got" -eq 124 ] && echo ': hung'))"
    fi
    grep '^not ok' "$TMP/out" | sed 's/^/#   /'
}

run_checks "a signal handler allocating and mapping while the main thread is inside cebox" -- \
    "$CEBOX" run --quiet "$P/reenter" 400 1
run_checks "the same with 3 threads looping (the heap's lock contended)" -- \
    "$CEBOX" run --quiet "$P/reenter" 400 3
# The same where it used to hang by chance, every time: a handler at each
# mprotect cebox makes holding the slot's lock (a thread's stack record
# made and dropped) and at fork's clone, between cebox's fork handlers.
run_checks "a signal handler allocating at cebox's system calls under its locks (threads, fork)" -- \
    "$CEBOX" run --quiet "$P/reenter_trap"
# --out: cebox keeps the program's actions for the signals that end it.
run_checks "sigaction from a signal handler while its thread is inside sigaction" -- \
    "$CEBOX" run --quiet --out "$TMP/runs" "$P/sigaction_reenter" 300
run_checks "a signal handler allocating while its thread is inside libcebox's Win32 API, preloaded too" -- \
    "$CEBOX" run --quiet "$P/reenter_winapi" 300

# Foreign pointers: the program counts its frees of glibc's blocks and its
# frees and reallocs of slot pointers that are no block; the exit summary
# must count the same, no more (malloc_usable_size is no free).
run_checks "free, realloc and malloc_usable_size of blocks cebox did not hand out" -- \
    "$CEBOX" run "$P/foreign" "$P/.libs/deepbind_lib.so"
mine=$(sed -n 's/^foreign frees \([0-9]*\), bad pointers \([0-9]*\)$/\2 \1/p' "$TMP/out")
theirs=$(sed -n 's/^cebox:   bad frees reported \([0-9]*\), frees of memory from before cebox ignored \([0-9]*\)$/\1 \2/p' "$TMP/err")
if [ -n "$mine" ] && [ "$mine" = "$theirs" ]; then
    ok "the summary counts those bad and foreign frees ($theirs)"
else
    bad "the summary counts those bad and foreign frees (program: '$mine', summary: '$theirs')"
fi

run_checks "the same where a sandbox refuses process_vm_readv" -- \
    "$CEBOX" run --quiet "$P/foreign" --forbid-process-vm-readv "$P/.libs/deepbind_lib.so"

# mremap: each case's line under cebox must be the kernel's, but for the
# deliberate differences below.
# documented CASE: MREMAP_DONTUNMAP is emulated as Linux 5.7 documents it
# (the old range stays mapped, with its protection, empty) even on a kernel
# that refuses it with EINVAL; cebox's line is then what the documentation
# says.
documented() {
    case $1 in
    "MREMAP_DONTUNMAP") echo "moved kept=1 old=rw old-zero=1" ;;
    "MREMAP_DONTUNMAP of a PROT_NONE mapping") echo "moved old=- kept=1 old-zero=1" ;;
    esac
}
# deliberate CASE: cebox's line where it differs from the kernel's on purpose,
# after a | why.
deliberate() {
    case $1 in
    "MREMAP_FIXED into free space off a 64 KB boundary")
        echo "ENOMEM before-target=-|free slot space is taken in whole 64 KB blocks" \
            "from their start, as by mmap(MAP_FIXED) and on CE" ;;
    esac
}
if timeout 20 "$P/mremap_cases" > "$TMP/native" 2> "$TMP/err" &&
    timeout 20 "$CEBOX" run --quiet "$P/mremap_cases" > "$TMP/box" 2>> "$TMP/err"; then
    ok "mremap_cases runs natively and under cebox"
else
    cat "$TMP/native" "$TMP/box" >> "$TMP/err" 2> /dev/null
    bad "mremap_cases runs natively and under cebox"
fi
while IFS= read -r line; do
    case=${line%%:*}
    got=$(grep -F "$case:" "$TMP/box" | grep -m1 "^$case:" || true)
    want=$line
    if [ "$line" = "$case: EINVAL" ] && [ -n "$(documented "$case")" ]; then
        want="$case: $(documented "$case")"
        case="$case (this kernel refuses it; cebox does what Linux documents)"
    elif [ -n "$(deliberate "$case")" ]; then
        want="$case: $(deliberate "$case" | cut -d'|' -f1)"
        case="$case (the kernel: ${line#*: }; cebox differs on purpose: $(deliberate "$case" | cut -d'|' -f2))"
    fi
    if [ "$got" = "$want" ]; then
        ok "mremap, $case: ${want#*: }"
    else
        echo "kernel: $line" > "$TMP/err"
        echo "cebox:  $got" >> "$TMP/err"
        bad "mremap, $case"
    fi
done < "$TMP/native"
if grep -q "crashed or failed" "$TMP/box"; then
    grep "crashed or failed" "$TMP/box" > "$TMP/err"
    bad "no group of mremap cases crashes under cebox"
fi

finish
