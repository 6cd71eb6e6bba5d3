# workloads.sh - the benchmark workloads of run_bench.sh, one function each
# (b_NAME), sourced by a shell that may run under cebox or heaptrack: the
# real-program tests' workloads (tests/real_workloads.sh), run longer so
# that the timings mean something.  They fit in the default 32 MB slot, so
# cebox runs them to the end.
. "${WORKLOADS:?}"
b_sqlite() {
    sqlite3 <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v INTEGER);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 150000)
INSERT INTO t(name, v) SELECT 'name-' || x, (x * 7919) % 10007 FROM c;
CREATE INDEX t_v ON t(v);
SELECT count(*), sum(v) FROM t WHERE v BETWEEN 100 AND 5000;
SELECT name FROM t ORDER BY v DESC, name LIMIT 3;
DELETE FROM t WHERE id % 3 = 0;
SELECT count(*), sum(length(name)) FROM t;
SQL
}
b_lua() { LUA_ROUNDS=15 w_lua; }
b_python() { PY_ROUNDS=6 w_python; }

# The workloads of run_alloc.sh.  p_NAME is the program a workload runs,
# called by name (bench/ is on PATH there): cebox's exit summary of it proves
# a run was in the box, and heaptrack wraps it.  note_NAME is printed under
# the table.  Sizes: a callgrind run of each takes seconds.
p_sqlite=sqlite3 p_lua=lua5.4 p_python=python3
p_larson=bench_larson
b_larson() { bench_larson 1200000 2; }
p_xmalloc=bench_xmalloc
b_xmalloc() { bench_xmalloc 1200000; }
p_mstress=bench_mstress
b_mstress() { bench_mstress 1000; }
p_cfrac=bench_cfrac
b_cfrac() { bench_cfrac 2000000; }
# realloc of a growing large block in small steps: the substitution builds
# its result one match at a time
p_perl=perl
b_perl() {
    perl -e 'my $s = join(",", 1..200000); (my $t = $s) =~ s/(\d+),/<$1>/g; print length $t' && echo
}
# process start: /bin/true, each in a box of its own under cebox.  The loop
# is bash's: dash leaves by _exit, so cebox prints no summary for it
p_true=bash
b_true() {
    bash -c 'n=0; i=0; while [ $i -lt '"${TRUE_RUNS:-200}"' ]; do
        /bin/true && n=$((n + 1)); i=$((i + 1)); done; echo "$n started"'
}
cg_true() { TRUE_RUNS=20 b_true; }
note_true="200 starts; instructions over 20 (valgrind's own start-up costs about half a second a process); under heaptrack only the loop's bash is traced, the /bin/true processes carry its preload library untraced"
# Workloads that do not fit the 32 MB slot of ce5 (their run fails, so they are
# not timed there; CE5_TOO_BIG= in the environment tries them all).
# perl under ce5: which call meets the full slot first depends on the
# process's layout (the size of its environment moves it), so the failure is
# sometimes a small malloc, sometimes the 48-byte calloc of the match offsets
# in Perl_regexec_flags.  In the latter case perl's own exit frees that block
# twice (once unwinding its save stack, once in Perl_pregfree2: glibc aborts
# with "double free detected in tcache 2" when that calloc is made to fail),
# and cebox reports the second free as "already freed" and ignores it.
CE5_TOO_BIG=${CE5_TOO_BIG-perl}
note_perl="in the 32 MB slot of ce5 perl dies (Out of memory!: no contiguous run; when the failed call is regexec's calloc, perl frees that block twice on its way out, which cebox reports as a bad free)"
