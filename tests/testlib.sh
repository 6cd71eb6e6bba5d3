# testlib.sh - sourced by the end-to-end test scripts: a temporary directory
# removed at exit, TAP-style "ok N - ..." / "not ok N - ..." lines, and the
# closing "N passed, N failed" line (finish returns non-zero on a failure).
# A script may set BAD_SHOW to files whose first lines `bad` prints.  Also:
# B, the build directory, and BUILD_ABS, the same as an absolute path; `run`
# (a script may define its own), which keeps a command's output and errors
# in $TMP/out and $TMP/err; `has` and `hasF`, grep -q and grep -qF of a
# pattern in a file.
B="${top_builddir:-.}"
BUILD_ABS=$(cd "$B" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
n=0
BAD_SHOW=""

ok() { n=$((n + 1)); echo "ok $n - $1"; }
run() { "$@" > "$TMP/out" 2> "$TMP/err"; }
has() { grep -q -- "$1" "$2"; }
hasF() { grep -qF -- "$1" "$2"; }

bad() {
    n=$((n + 1))
    echo "not ok $n - $1"
    fails=$((fails + 1))
    for f in $BAD_SHOW; do
        [ -f "$f" ] && sed 's/^/#   /' "$f" | head -20
    done
    return 0
}

finish() {
    echo "$((n - fails)) passed, $fails failed"
    [ "$fails" -eq 0 ]
}
