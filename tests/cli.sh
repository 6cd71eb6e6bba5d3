#!/bin/sh
# cli.sh - the cebox command and a program linked with the shared library:
# exit statuses, messages for every kind of bad input, and the demo.
set -u
B="${top_builddir:-.}"
CEBOX="$B/cebox"
LINKED="$B/tests/prog_linked"
fails=0
n=0

check() { # check NAME EXPECTED-STATUS EXPECTED-TEXT -- COMMAND...
    name=$1 want=$2 text=$3
    shift 4
    n=$((n + 1))
    out=$("$@" 2>&1)
    got=$?
    if [ "$got" -ne "$want" ]; then
        echo "not ok $n - $name: exit $got, expected $want"; echo "$out" | sed 's/^/#   /'
        fails=$((fails + 1))
    elif [ -n "$text" ] && ! printf '%s\n' "$out" | grep -qF -- "$text"; then
        echo "not ok $n - $name: output lacks '$text'"; echo "$out" | sed 's/^/#   /'
        fails=$((fails + 1))
    else
        echo "ok $n - $name"
    fi
}

check "version" 0 "cebox 0.1.0" -- "$CEBOX" --version
check "help" 0 "--slot-size" -- "$CEBOX" --help
# The exit summary's destructor is linked into the tool too: a process that
# never used the emulation has nothing to summarize and makes no core then.
check "no core made at exit" 0 "cebox 0.1.0" -- env CEBOX_SLOT_SIZE=33x "$CEBOX" --version
check "run --help" 0 "run [OPTIONS] [--] PROGRAM" -- "$CEBOX" run --help
check "no command" 2 "Usage: cebox" -- "$CEBOX"
check "unknown command" 2 "unknown command 'frob'; accepted: run, state, demo, settings" -- "$CEBOX" frob
check "bad size option" 2 "--slot-size: CEBOX_SLOT_SIZE='33x' is not valid; accepted: a size" -- "$CEBOX" settings --slot-size 33x
check "bad size option (=form)" 2 "CEBOX_RAM='1.5M' is not valid" -- "$CEBOX" settings --ram=1.5M
check "missing value" 2 "--profile needs a value" -- "$CEBOX" settings --profile
check "unknown option" 2 "unknown option '--nope'" -- "$CEBOX" settings --nope
check "bad profile in environment" 2 "CEBOX_PROFILE='ce4' is not valid; accepted: ce3, ce5 or ce6" -- env CEBOX_PROFILE=ce4 "$CEBOX" settings
check "settings" 0 "CEBOX_RAM=16M	(set)" -- "$CEBOX" settings --profile ce3 --ram 16M
check "settings profile" 0 "CEBOX_PROFILE=ce3	(set)" -- "$CEBOX" settings --profile ce3
check "demo fills the slot" 0 "511 calls succeeded, call 512 failed with error 8 (ERROR_NOT_ENOUGH_MEMORY)" -- "$CEBOX" demo
check "demo in a 4 MB slot" 0 "63 calls succeeded" -- "$CEBOX" demo --slot-size 4M
check "demo bad option" 2 "CEBOX_LARGE_MEMORY_AREA='perhaps'" -- "$CEBOX" demo --large-memory-area=perhaps
check "negated flag takes no value" 2 "--no-follow takes no value" -- "$CEBOX" settings --no-follow=yes
check "flag alone means yes" 0 "CEBOX_QUIET=yes" -- "$CEBOX" settings --quiet
check "linked program" 0 "offset 0x10000 state 0x1000 protect 0x4 slot 33554432" -- "$LINKED"
check "linked program, ce6" 0 "slot 2147483648" -- env CEBOX_PROFILE=ce6 "$LINKED"
check "linked program refuses bad setting" 2 "cebox: CEBOX_SLOT_SIZE='big' is not valid; accepted:" -- env CEBOX_SLOT_SIZE=big "$LINKED"
# The refusal is a single line.
lines=$(env CEBOX_RAM=x "$LINKED" 2>&1 | wc -l)
n=$((n + 1))
if [ "$lines" -eq 1 ]; then echo "ok $n - refusal is one line"; else echo "not ok $n - refusal is $lines lines"; fails=$((fails + 1)); fi

# Every option of the table is documented in the man page.
MAN="${top_srcdir:-.}/man/cebox.1"
for flag in $("$CEBOX" settings --markdown | sed -n 's/^| `CEBOX_[A-Z_]*` | `--\([a-z-]*\)`.*/\1/p'); do
    n=$((n + 1))
    if grep -q -- "$(printf '%s' "$flag" | sed 's/-/\\\\-/g')" "$MAN"; then
        echo "ok $n - man page documents --$flag"
    else
        echo "not ok $n - man page lacks --$flag"; fails=$((fails + 1))
    fi
done

echo "$((n - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
