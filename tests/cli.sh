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

# Long string settings: a 16-step schedule (198 bytes) stays whole and leaves
# the other settings alone; a value one byte over its field is refused before
# anything runs, from an option or from the environment.
s16=$(i=1; sep=; while [ $i -le 16 ]; do printf '%s%ss:critical' "$sep" $i; sep=,; i=$((i + 1)); done)
check "16-step schedule shown whole" 0 "CEBOX_STATE_SCHEDULE=$s16	(set)" -- "$CEBOX" settings --state-schedule "$s16"
check "16-step schedule leaves the session alone" 0 "CEBOX_SESSION=(none)	(default)" -- "$CEBOX" settings --state-schedule "$s16"
check "16-step schedule from the environment" 0 "CEBOX_SESSION=(none)	(default)" -- env CEBOX_STATE_SCHEDULE="$s16" "$CEBOX" settings
plain=$("$CEBOX" settings | grep -v '^CEBOX_STATE_SCHEDULE=')
with16=$("$CEBOX" settings --state-schedule "$s16" | grep -v '^CEBOX_STATE_SCHEDULE=')
n=$((n + 1))
if [ "$plain" = "$with16" ]; then echo "ok $n - 16-step schedule changes no other setting"; else
    echo "not ok $n - 16-step schedule changed other settings"; printf '%s\n' "$with16" | sed 's/^/#   /'; fails=$((fails + 1)); fi
check "run with a 16-step schedule" 0 "" -- "$CEBOX" run --quiet --state-schedule "$s16" -- true
tmp=$(mktemp -d) || exit 1
long=/$(printf '%0255d' 0 | tr 0 a)
long256=$long
long255=${long%a}
check "out dir of 255 bytes" 0 "CEBOX_OUT=$long255	(set)" -- "$CEBOX" settings --out "$long255"
for opt in out session state-schedule; do
    var=CEBOX_$(printf '%s' "$opt" | tr a-z- A-Z_)
    value=$long256
    [ "$opt" = state-schedule ] && value=0$(printf '%s' "$s16" | sed 's/\([0-9]*\)s/00000000\1s/g')
    accepted="a path of 1 to 255 bytes"
    [ "$opt" = state-schedule ] && accepted="319 bytes"
    check "settings --$opt too long" 2 "accepted: " -- "$CEBOX" settings --"$opt" "$value"
    check "settings --$opt too long names what fits" 2 "$accepted" -- "$CEBOX" settings --"$opt" "$value"
    check "$var too long in the environment" 2 "cebox: $var='" -- env "$var=$value" "$CEBOX" settings
    for how in option environment; do
        if [ "$how" = option ]; then
            out=$("$CEBOX" run --"$opt" "$value" -- sh -c "touch '$tmp/ran'" 2>&1); got=$?
        else
            out=$(env "$var=$value" "$CEBOX" run -- sh -c "touch '$tmp/ran'" 2>&1); got=$?
        fi
        n=$((n + 1))
        lines=$(printf '%s\n' "$out" | wc -l)
        if [ "$got" -eq 2 ] && [ ! -e "$tmp/ran" ] && [ "$lines" -eq 1 ] && printf '%s\n' "$out" | grep -qF "$accepted"; then
            echo "ok $n - run refuses a too long $var ($how), runs nothing"
        else
            echo "not ok $n - run with a too long $var ($how): exit $got, $lines lines"; printf '%s\n' "$out" | sed 's/^/#   /'
            fails=$((fails + 1))
        fi
        rm -f "$tmp/ran"
    done
done
rm -rf "$tmp"

# Every option of the table is documented in the man page.
tmpman=$(mktemp)
MAN="${top_srcdir:-.}/man/cebox.1"
for flag in $("$CEBOX" settings --markdown | sed -n 's/^| `CEBOX_[A-Z_]*` | `--\([a-z-]*\)`.*/\1/p'); do
    n=$((n + 1))
    esc=$(printf '%s' "--$flag" | sed 's/-/\\\\-/g')
    if grep -q -- "^\.BR* $esc\( \|\$\)" "$MAN"; then
        echo "ok $n - man page documents --$flag"
    else
        echo "not ok $n - man page lacks --$flag"; fails=$((fails + 1))
    fi
done

# The man page stands alone: its sections, each command, the summary's lines,
# the failure reasons and the variables are all in it, with no pointer to a
# source tree an installed copy lacks.
mancheck() { # mancheck NAME: ok when the command just before succeeded
    st=$?
    n=$((n + 1))
    if [ "$st" -eq 0 ]; then echo "ok $n - man page: $1"; else echo "not ok $n - man page: $1"; fails=$((fails + 1)); fi
}
section() { # the text of section $1 (up to the next .SH), with \- as -
    awk -v s=".SH $1" '$0 == s { on = 1; next } /^\.SH / { on = 0 } on' "$MAN" | sed 's/\\-/-/g'
}
for sec in DESCRIPTION COMMANDS OPTIONS EXAMPLES "EXIT STATUS" ENVIRONMENT FILES "SEE ALSO"; do
    [ -n "$(section "$sec")" ]; mancheck "section $sec"
done
[ "$(section EXAMPLES | grep -c '^\.SS ')" -ge 3 ]; mancheck "three examples (a binary under CE constraints, leaks and fragmentation, low memory)"
! grep -qi 'README\|cebox sources\|docs/' "$MAN"; mancheck "stands alone (no README, no docs/ of a source tree)"
for cmd in $("$CEBOX" --help | sed -n 's/^  \([a-z][a-z]*\) .*/\1/p'); do
    section COMMANDS | grep -qx "\.B $cmd"; mancheck "command $cmd"
done
for var in $("$CEBOX" settings --markdown | sed -n 's/^| `\(CEBOX_[A-Z_]*\)`.*/\1/p'); do
    section ENVIRONMENT | grep -q "$var"; mancheck "ENVIRONMENT names $var"
done
# Every line a real summary starts with (a failing run prints most, the
# rarer ones are named) and every failure reason a real report gives.
"$CEBOX" run --slot-size 1M "$B/tests/programs/hog" 2000 2> "$tmpman" > /dev/null
{ sed -n 's/^cebox:   \([a-z][a-z ]*\):.*/\1/p' "$tmpman" | grep -vx "where they failed"
  printf '%s\n' "bad frees" "outside the slot" "not recorded" "not emulated"; } > "$tmpman.labels"
[ "$(wc -l < "$tmpman.labels")" -ge 8 ]; mancheck "a real summary gives its lines"
while IFS= read -r label; do
    section DESCRIPTION | grep -qx "\.B $label"; mancheck "DESCRIPTION explains the summary's '$label'"
done < "$tmpman.labels"
mkdir -p "$tmpman.d"
"$CEBOX" run --quiet --slot-size 1M --out "$tmpman.d" "$B/tests/programs/hog" 2000 > /dev/null 2>&1
"$CEBOX" report "$tmpman.d" 2>&1 | sed -n 's/^  reason: \(.*\); memory state:.*/\1/p' | tr ',' '\n' |
    sed 's/^ *//; s/ ([0-9]*)$//' | sort -u > "$tmpman.reasons"
[ -s "$tmpman.reasons" ]; mancheck "a real report gives reasons"
printf '%s\n' "no contiguous run of free blocks (fragmentation)" "device RAM exhausted" \
    "refused by the low/critical memory cap" "fixed-size heap full" >> "$tmpman.reasons"
while IFS= read -r reason; do
    section DESCRIPTION | grep -qxF ".B $reason"; mancheck "DESCRIPTION explains the reason '$reason'"
done < "$tmpman.reasons"
rm -rf "$tmpman" "$tmpman.d" "$tmpman.labels" "$tmpman.reasons"
# Every option of cebox stress's own is in the man page's stress entry.
for opt in $("$CEBOX" stress --help | sed -n '/^Options of stress:/,/^$/s/^  \(-[a-z]*, \)*\(--[a-z]*\).*/\2/p'); do
    section COMMANDS | sed 's/\\fB//g; s/\\fR//g' | grep -q -- "$opt"; mancheck "stress entry documents $opt"
done
if command -v groff > /dev/null; then
    [ -z "$(groff -man -Tutf8 -ww "$MAN" 2>&1 > /dev/null)" ]; mancheck "renders without groff warnings"
fi

echo "$((n - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
