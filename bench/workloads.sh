# workloads.sh - the benchmark workloads of run_bench.sh, one function each
# (b_NAME), sourced by a shell that may run under cebox or heaptrack.  They
# fit in the default 32 MB slot, so cebox runs them to the end.
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
b_lua() {
    lua5.4 -e '
local total = 0
for round = 1, 15 do
  local t = {}
  for i = 1, 20000 do t[i] = { i, tostring(i), { i * 2 } } end
  for i = 1, #t, 7 do total = total + t[i][3][1] end
  t = nil
  collectgarbage()
end
print(total)'
}
b_python() {
    /usr/bin/python3 -c '
import json
total = 0
for r in range(6):
    data = [{"id": i, "name": "item%d" % i, "tags": ["a", "b", str(i % 7)], "v": i * 0.5} for i in range(15000)]
    text = json.dumps(data, sort_keys=True)
    total += len(json.loads(text))
print(total)'
}
