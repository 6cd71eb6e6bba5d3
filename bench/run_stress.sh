#!/bin/sh
# run_stress.sh - cebox stress campaigns on real Debian programs, on small
# inputs: jq, gawk, sqlite3, lua5.4 and python3 -c (those installed), plus
# tests/programs/stress_target as the small program.  One table line per
# program: distinct allocation stacks, runs, wall seconds, runs per second,
# outcomes, crash buckets, and crashes inside cebox (must be 0).  A
# benchmark, not a test: wall times on a shared machine vary.
#
#   bench/run_stress.sh [PROGRAM...]    (default: every one above installed)
#   CEBOX=path/to/cebox STRESS_JOBS=N STRESS_STRATEGY=stacks|nth STRESS_TIMEOUT=S
#   STRESS_OUT=DIR keeps each campaign's JSON there (default: a temporary directory)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
CEBOX=${CEBOX:-$HERE/../cebox}
JOBS=${STRESS_JOBS:-2}
STRATEGY=${STRESS_STRATEGY:-stacks}
TIMEOUT=${STRESS_TIMEOUT:-10}
OUT=${STRESS_OUT:-$(mktemp -d)}
mkdir -p "$OUT"
printf '{"a": [1, 2, {"b": "x"}], "c": "hello"}\n' > "$OUT/in.json"
printf 'a 1\nb 2\nc 3\n' > "$OUT/in.txt"

# name, then the command (words), one campaign each
campaign() {
    name=$1
    shift
    command -v "$1" > /dev/null 2>&1 || [ -x "$1" ] || { echo "# $name: not installed, skipped"; return 0; }
    "$CEBOX" stress -j "$JOBS" --strategy "$STRATEGY" --timeout "$TIMEOUT" --format json \
        --json "$OUT/$name.json" -- "$@" > /dev/null 2> "$OUT/$name.err" || true
    python3 - "$OUT/$name.json" "$name" <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print("| %s | (no result: %s) |" % (sys.argv[2], e)); sys.exit(0)
o = d["outcomes"]
print("| %s | %d | %d | %.1f | %.1f | %d | %d | %d | %d | %d | %d | %d |" % (
    sys.argv[2], d["unique_stacks"], d["runs"], d["elapsed_s"], d["runs_per_s"], o["ok"], o["handled"],
    o["crash"], o["hang"], len(d["buckets"]), sum(1 for b in d["buckets"] if b["confirmed"]), o["cebox_crash"]))
PY
}

echo "| program | stacks | runs | s | runs/s | ok | handled | crash | hang | buckets | confirmed | inside cebox |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
want=${*:-"stress_target jq gawk sqlite3 lua python3"}
for p in $want; do
    case $p in
    stress_target) campaign stress_target "$HERE/../tests/programs/stress_target" ;;
    jq) campaign jq jq '.a[2].b' "$OUT/in.json" ;;
    gawk) campaign gawk gawk '{ s += $2 } END { print s }' "$OUT/in.txt" ;;
    sqlite3) campaign sqlite3 sqlite3 :memory: 'create table t(a); insert into t values (1),(2); select sum(a) from t;' ;;
    lua) campaign lua lua5.4 -e 'local t = {} for i = 1, 100 do t[i] = tostring(i) end print(#t)' ;;
    python3) campaign python3 /usr/bin/python3 -S -c 'print(sum(range(10)))' ;;
    *) echo "# $p: unknown" ;;
    esac
done
[ -n "${STRESS_OUT:-}" ] || rm -rf "$OUT"
