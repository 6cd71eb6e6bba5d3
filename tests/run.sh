#!/bin/sh
# run.sh - `cebox run` and the preload library end to end: the interposed
# API, threads, C++, fork+exec with and without --no-follow, exit statuses,
# the exit summary, --quiet, --out, programs that escape LD_PRELOAD, and bad
# settings reaching the preload library directly.
set -u
B="${top_builddir:-.}"
CEBOX="$B/cebox"
P="$B/tests/programs"
PRELOAD="$B/.libs/cebox-preload.so"
. "${top_srcdir:-.}/tests/testlib.sh"
BAD_SHOW="$TMP/err"


# expect NAME STATUS [STDERR-TEXT] -- COMMAND...: exit status and stderr text.
expect() {
    name=$1 want=$2 text=$3
    shift 4
    "$@" > "$TMP/out" 2> "$TMP/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        cat "$TMP/out" >> "$TMP/err"
        bad "$name (exit $got, expected $want)"
    elif [ -n "$text" ] && ! grep -qF -- "$text" "$TMP/err"; then
        bad "$name (stderr lacks '$text')"
    else
        ok "$name"
    fi
}

expect "the interposed API behaves (see its own checks)" 0 "profile ce5" -- "$CEBOX" run "$P/preload_api"
grep '^not ok' "$TMP/out" | sed 's/^/#   /'
if grep -q "bad frees reported 2" "$TMP/err" && grep -q "(an interior pointer); ignored" "$TMP/err" && grep -q "(already freed); ignored" "$TMP/err"; then
    ok "bad frees are reported, one line each, and counted in the summary"
else
    bad "bad frees are reported, one line each, and counted in the summary"
fi
if grep -q "failed allocations: [1-9]" "$TMP/err"; then ok "the summary counts failed allocations"; else bad "the summary counts failed allocations"; fi

expect "4 threads x 100 000 malloc/free" 0 "" -- "$CEBOX" run --quiet "$P/threads"
# fork while other threads allocate: cebox's locks are taken across the
# fork of a process with threads (only a single-threaded one skips them).
expect "fork while 4 threads allocate: no child inherits a held lock" 0 "" -- "$CEBOX" run --quiet "$P/threads" fork
expect "C++ containers and operator new/delete" 0 "" -- "$CEBOX" run --quiet "$P/containers"
# ce3's heap aligns to 8; malloc still gives max_align_t alignment.
expect "ce3: 4 threads x 100 000 malloc/free, aligned" 0 "" -- "$CEBOX" run --quiet --profile ce3 "$P/threads"
expect "ce3: C++ containers and operator new/delete" 0 "" -- "$CEBOX" run --quiet --profile ce3 "$P/containers"

expect "fork+exec chain" 0 "" -- "$CEBOX" run --quiet "$P/forkexec" 3
if [ "$(grep -c 'in the box' "$TMP/out")" -eq 3 ]; then ok "every exec'd level runs in its own box"; else bad "every exec'd level runs in its own box"; cat "$TMP/out"; fi
expect "fork+exec chain, --no-follow" 0 "" -- "$CEBOX" run --quiet --no-follow "$P/forkexec" 3
if [ "$(sed -n 1p "$TMP/out")" = "level 3: in the box" ] && [ "$(grep -c 'outside the box' "$TMP/out")" -eq 2 ]; then
    ok "--no-follow: only the first program is in the box"
else
    bad "--no-follow: only the first program is in the box"; cat "$TMP/out"
fi

expect "exit status is the program's" 3 "" -- "$CEBOX" run "$P/crash" exit 3
expect "a signal gives 128+signal" 139 "was killed by signal 11" -- "$CEBOX" run "$P/crash" segv
expect "summary on stderr" 0 "cebox:   slot: peak" -- "$CEBOX" run "$P/crash"
# A program that closes its stderr at exit (coreutils do) still has its
# summary on cebox run's, through the copy cebox run hands down; one whose
# stderr is open elsewhere keeps it there (its shell sent it to /dev/null).
expect "a program that closed its stderr: the summary on cebox run's" 0 "cebox:   slot: peak" -- "$CEBOX" run "$P/crash" closeerr
if command -v ls > /dev/null && [ -d /etc ]; then
    expect "ls, which closes its stderr at exit: the summary still shown" 0 "(ls /etc), profile ce5" -- "$CEBOX" run ls /etc
fi
# cebox run with no stderr of its own hands down no copy: the program that
# closes its own still runs to its end, and nothing is written anywhere.
if "$CEBOX" run "$P/crash" closeerr 2>&- > "$TMP/out" && [ ! -s "$TMP/out" ]; then
    ok "cebox run without a stderr: the program runs, no copy to write to"
else bad "cebox run without a stderr: the program runs, no copy to write to"; fi
expect "a program whose stderr is /dev/null: no summary of it on cebox run's" 0 "" -- \
    "$CEBOX" run --summaries all /bin/bash -c "\"$P/crash\" exit 0 2> /dev/null; true"
if grep -q "(/bin/bash " "$TMP/err" && ! grep -q "crash exit 0)" "$TMP/err"; then
    ok "only the shell's summary: its child's went where the shell sent its stderr"
else bad "only the shell's summary: its child's went where the shell sent its stderr"; sed 's/^/#   /' "$TMP/err"; fi
# _exit and _Exit skip the destructors: the summary is written before
# them (dash, /bin/sh here, ends that way), with the status; a vfork child
# that ends by _exit in its parent's memory writes none, and leaves its
# parent's summary whole.
for call in _exit _Exit; do
    expect "$call: the summary all the same" 3 "cebox:   still allocated: 1000 bytes in 1 block" -- "$CEBOX" run "$P/quickexit" $call 3
done
rm -rf "$TMP/quick"
run "$CEBOX" run --quiet --out "$TMP/quick" "$P/quickexit" _exit 5
if "$CEBOX" report "$TMP/quick" 2>&1 | grep -q "^cebox:   exit status 5$"; then
    ok "_exit: its log records the summary and the status"
else bad "_exit: its log records the summary and the status"; "$CEBOX" report "$TMP/quick" 2>&1 | sed 's/^/#   /'; fi
expect "a vfork child's _exit: only the parent's summary" 0 "vfork)" -- "$CEBOX" run "$P/quickexit" vfork
if [ "$(grep -c '^cebox: pid ' "$TMP/err")" -eq 1 ] && grep -q "^cebox:   still allocated: [0-9]* bytes in [3-9] blocks" "$TMP/err"; then
    ok "the vfork parent's summary counts its blocks after the child's _exit"
else bad "the vfork parent's summary counts its blocks after the child's _exit"; sed 's/^/#   /' "$TMP/err"; fi
# _exit from a signal handler that may have interrupted the allocator
# (its locks held: the summary then says what it can without them, its
# command line always) while four threads allocate: a summary, never a
# hang.
expect "_exit in a signal handler, threads allocating: a summary, no hang" 9 "quickexit signal), profile ce5" -- \
    timeout -k 5 60 "$CEBOX" run --leaks "$P/quickexit" signal
if has "^cebox:   slot and heap: not read\|^cebox:   slot: peak [1-9]" "$TMP/err" && ! has "peak 0 of 0 blocks" "$TMP/err"; then
    ok "its slot and heap: their figures, or that they were not read, never zeros"
else bad "its slot and heap: their figures, or that they were not read, never zeros"; sed 's/^/#   /' "$TMP/err"; fi
if [ -x /bin/dash ]; then
    expect "dash, which ends by _exit: its summary" 0 "(/bin/dash -c exit 0), profile ce5" -- "$CEBOX" run /bin/dash -c "exit 0"
fi
expect "--quiet" 0 "" -- "$CEBOX" run --quiet "$P/crash"
if [ -s "$TMP/err" ]; then bad "--quiet prints nothing"; else ok "--quiet prints nothing"; fi
expect "--out writes a summary per process" 0 "" -- "$CEBOX" run --quiet --out "$TMP/out.d" "$P/forkexec" 3
if [ "$(ls "$TMP/out.d" | grep -c '^cebox-[0-9]*\.summary$')" -eq 3 ]; then ok "three processes, three summaries"; else bad "three processes, three summaries"; ls "$TMP/out.d"; fi
expect "--out that cannot be made" 2 "--out /proc/nope" -- "$CEBOX" run --out /proc/nope/x "$P/crash"

expect "missing program" 127 "nosuchprogram: command not found" -- "$CEBOX" run nosuchprogram
touch "$TMP/plain" && chmod 644 "$TMP/plain"
expect "not executable" 126 "not an executable file" -- "$CEBOX" run "$TMP/plain"
# A library loaded with RTLD_DEEPBIND binds to libc's malloc: the summary
# says how much went around the emulation, and programs whose every call
# reaches cebox never see that line.
expect "RTLD_DEEPBIND library detected" 0 "not emulated: glibc's own malloc holds" -- \
    "$CEBOX" run "$P/deepbind" "$P/.libs/deepbind_lib.so"
if grep -q "^cebox:   heap: .* peak [1-9]" "$TMP/err"; then ok "the program's own malloc still reaches cebox beside it"; else bad "the program's own malloc still reaches cebox beside it"; fi
expect "no such line for a program that stays inside" 0 "profile ce5" -- "$CEBOX" run "$P/threads"
if grep -q "not emulated" "$TMP/err"; then bad "a program inside cebox is not reported as escaping"; else ok "a program inside cebox is not reported as escaping"; fi
# The system calls of a boxed start and exit that are not needed: a quiet
# process reads no command line (process_vm_readv, the log's signal mask)
# and never initializes glibc's malloc to ask what it holds (getrandom),
# and the session's descriptor is checked without F_GETFL, and mapped
# without a stat or an open of the session's path; with nothing to say at
# exit, its ending asks no pid (the join's getpid is the only one).
if command -v strace > /dev/null 2>&1 && strace -o /dev/null true 2> /dev/null; then
    "$CEBOX" run --quiet --profile ce6 --only true strace -o "$TMP/strace" true > /dev/null 2>&1
    if grep -q "^exit_group" "$TMP/strace" && grep -q "MAP_SHARED, [0-9]*, 0)" "$TMP/strace" &&
        ! grep -q "cebox-session\|^getrandom\|^process_vm_readv\|^rt_sigprocmask\|^gettid\|F_GETFL" "$TMP/strace" &&
        [ "$(grep -c '^getpid' "$TMP/strace")" -eq 1 ]; then
        ok "a quiet boxed start and exit make none of the system calls they do not need"
    else
        bad "a quiet boxed start and exit make none of the system calls they do not need"
        sed 's/^/#   /' "$TMP/strace"
    fi
    # A fork of a boxed process without --out takes no log lock across it
    # (nobody takes it there): no signal mask changed around it.
    "$CEBOX" run --quiet --profile ce6 --only forkexec strace -f -o "$TMP/strace" "$P/forkexec" 2 > /dev/null 2>&1
    if grep -q "clone\|fork" "$TMP/strace" && ! grep -q "rt_sigprocmask" "$TMP/strace"; then
        ok "a boxed fork without --out changes no signal mask"
    else
        bad "a boxed fork without --out changes no signal mask"
        grep "rt_sigprocmask\|clone\|fork" "$TMP/strace" | sed 's/^/#   /'
    fi
else
    echo "# skipped: strace cannot trace here (the start's system calls)"
fi
# What a program never frees is counted at exit: hog leaves 100 blocks of
# 4000 bytes (and stdio its buffer); true leaves nothing, and no such line.
expect "blocks never freed are counted at exit" 0 "still allocated: " -- "$CEBOX" run --out "$TMP/leak" "$P/hog" 400
left=$(sed -n 's/^cebox:   still allocated: .* in \([0-9]*\) blocks\{0,1\}$/\1/p' "$TMP/err")
if [ -n "$left" ] && [ "$left" -ge 100 ] && [ "$left" -le 110 ] &&
    "$CEBOX" report --format json "$TMP/leak" | grep -q "\"heap_live_blocks\": $left,"; then
    ok "hog's $left unfreed blocks: in the summary and in report's JSON"
else
    bad "hog's unfreed blocks (summary says '$left')"
fi
expect "a program that frees everything" 0 "profile ce5" -- "$CEBOX" run true
if grep -q "still allocated" "$TMP/err"; then bad "nothing left: no 'still allocated' line"; else ok "nothing left: no 'still allocated' line"; fi
expect "static program refused" 126 "is statically linked" -- "$CEBOX" run "$P/static_hello"
expect "bad option" 2 "CEBOX_PROFILE='ce9' is not valid" -- "$CEBOX" run --profile ce9 "$P/crash"
expect "bad setting in the environment" 2 "CEBOX_SLOT_SIZE='huge'" -- env CEBOX_SLOT_SIZE=huge "$CEBOX" run "$P/crash"
expect "unknown option" 2 "unknown option '--frob'" -- "$CEBOX" run --frob "$P/crash"
for own in --session-fd --stderr-fd=5 --watch-fd; do
    expect "cebox run refuses $own, a descriptor it sets itself" 2 "cebox: run: ${own%%=*} is not an option of cebox run" -- \
        "$CEBOX" run "$own" 5 "$P/crash"
done
expect "no program" 2 "no program given" -- "$CEBOX" run --quiet

if [ "$(id -u)" -eq 0 ] && id nobody > /dev/null 2>&1; then
    cp "$P/crash" "$TMP/suid" && chown nobody "$TMP/suid" && chmod u+s "$TMP/suid"
    expect "set-user-ID program refused" 126 "is set-user/group-ID" -- "$CEBOX" run "$TMP/suid"
else
    echo "# skipped: the set-user-ID check needs root (chown to nobody)"
fi

# The preload library by hand, without cebox run.
expect "LD_PRELOAD by hand" 0 "profile ce5" -- env LD_PRELOAD="$PRELOAD" "$P/crash"
expect "bad setting reaches the preload library" 2 "cebox: CEBOX_RAM='lots' is not valid" -- env CEBOX_RAM=lots LD_PRELOAD="$PRELOAD" "$P/crash"
expect "a shell script under cebox" 0 "" -- "$CEBOX" run --quiet /bin/sh -c 'x=$(echo hi | tr a-z A-Z); test "$x" = HI'

# What cebox maps while a failure is recorded is cebox's: a program that
# maps nothing outside the slot has no such line.
rm -rf "$TMP/own"; mkdir "$TMP/own"
run "$CEBOX" run --out "$TMP/own" --fail-nth 1 --fail-size-min 4000 --fail-size-max 4000 "$P/hog" 8
if has "injected 1" "$TMP/err" && ! has "outside the slot" "$TMP/err"; then
    ok "cebox's own mappings (the unwinder's) are not counted outside the slot"
else bad "cebox's own mappings (the unwinder's) are not counted outside the slot"; fi
if has "^cebox:   own memory (cebox's, not the program's): bookkeeping [1-9][0-9.]* [KMb][a-zB]* at exit, mappings peak [0-9.]* [KMb]" "$TMP/err" &&
    "$CEBOX" report "$TMP/own" 2>&1 | grep -q "^cebox:   own memory (cebox's"; then
    ok "cebox's own memory is reported on a line of its own (at exit and in the report)"
else bad "cebox's own memory is reported on a line of its own (at exit and in the report)"; fi

# Committed slot memory by kind: one 1 MB anonymous mapping is not heap.
rm -rf "$TMP/kinds"; mkdir "$TMP/kinds"
run "$CEBOX" run --out "$TMP/kinds" "$P/hog" mmap 1024
kinds='slot committed at its peak: heap [1-9][0-9.]* [KMb][a-zB]*, mappings and VirtualAlloc 1024\.0 KB\(,\|$\)'
if grep -q "$kinds" "$TMP/err" && "$CEBOX" report "$TMP/kinds" 2>&1 | grep -q "$kinds"; then
    ok "the summary splits committed slot memory by kind (at exit and in the report)"
else bad "the summary splits committed slot memory by kind (at exit and in the report)"; fi
# The heap's pages are the heap's from their first commit: /bin/true's
# peak is its process heap's first page (the regions were tagged after
# their first pages, which then counted as mappings at the peak).
for profile in ce5 ce6; do
    run "$CEBOX" run --summaries all --profile "$profile" /bin/true
    if grep -q 'slot committed at its peak: heap 4096 bytes, mappings and VirtualAlloc 0 bytes[,]*' "$TMP/err"; then
        ok "$profile: the heap's first page is counted as heap at the peak"
    else bad "$profile: the heap's first page is counted as heap at the peak: $(grep 'at its peak' "$TMP/err")"; fi
done

# The summary names the process by its command line as /proc/self/cmdline
# gives it (cebox reads it from the process's memory by the kernel's rule):
# as started, and after the program rewrote its arguments with perl's $0
# (which blanks the rest of their area: setproctitle's case), a title
# longer than the arguments reaching into the environment's area.
if command -v perl > /dev/null; then
    long=$(printf 'title%.0s' $(seq 1 48))
    for title in "" "short" "$long"; do
        run env "TITLE=$title" "$CEBOX" run -- perl -e '$0 = $ENV{TITLE} if $ENV{TITLE} ne ""; open my $f, "<", "/proc/self/cmdline"; local $/; my $c = <$f>; $c =~ s/\0+$//; $c =~ s/\0/ /g; print substr($c, 0, 250), "\n"'
        seen=$(cat "$TMP/out")
        named=$(sed -n 's/^cebox: pid [0-9]* (\(.*\)), profile .*/\1/p' "$TMP/err" | cut -c1-250)
        first=$(printf "%s" "${title:-perl -e}" | cut -c1-5)
        if [ -n "$seen" ] && [ "$seen" = "$named" ] && [ "$(printf '%s' "$seen" | cut -c1-5)" = "$first" ]; then
            ok "the summary's command line is /proc/self/cmdline's (\$0 of ${#title} characters)"
        else bad "the summary's command line (\$0 of ${#title} characters): '$named', /proc/self/cmdline: '$seen'"; fi
    done
fi

finish
