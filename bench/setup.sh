# setup.sh - what the benchmark scripts share, sourced with HERE set to
# bench/: the tree's top, the cebox and bench binaries (CEBOX, BENCH_BIN:
# make's bench targets set both; the build tree's by default), the real
# workloads' definitions, then the workload functions (workloads.sh), and a
# scratch directory TMP removed at exit.
TOP=$(cd "$HERE/.." && pwd)
CEBOX=${CEBOX:-$TOP/cebox}
BENCH_BIN=${BENCH_BIN:-$TOP/bench}
export WORKLOADS="$TOP/tests/real_workloads.sh"
PATH="$BENCH_BIN:$PATH"
export PATH
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
. "$HERE/workloads.sh"
