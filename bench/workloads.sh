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
