# real_workloads.sh - the workloads of real_programs.sh, one shell function
# each (w_NAME), sourced by a shell that may run under cebox.  Each prints
# its results on stdout; $INPUTS holds the generated inputs.
w_ls() { ls -lR /usr/share/doc | md5sum; }
w_sort() { sort -n "$INPUTS/numbers.txt" | md5sum; }
w_gzip() { gzip -c "$INPUTS/numbers.txt" | gzip -dc | md5sum; }
w_sqlite() {
    sqlite3 db.sqlite <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v INTEGER);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000)
INSERT INTO t(name, v) SELECT 'name-' || x, (x * 7919) % 10007 FROM c;
CREATE INDEX t_v ON t(v);
SELECT count(*), sum(v), max(name) FROM t WHERE v BETWEEN 100 AND 5000;
DELETE FROM t WHERE id % 3 = 0;
VACUUM;
SELECT count(*), sum(v) FROM t;
SQL
}
w_sqlite_big() {
    sqlite3 <<'SQL'
PRAGMA cache_size = -200000;
CREATE TABLE t(x TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000)
INSERT INTO t SELECT printf('%.200c', x) FROM c;
SELECT count(*), length(group_concat(x)) FROM t;
SQL
}
w_lua() {
    lua5.4 -e '
local total = 0
for round = 1, '"${LUA_ROUNDS:-20}"' do
  local t = {}
  for i = 1, 20000 do t[i] = { i, tostring(i), { i * 2 } } end
  for i = 1, #t, 7 do total = total + t[i][3][1] end
  t = nil
  collectgarbage()
end
print(total)'
}
w_lua_big() {
    lua5.4 -e '
local t = {}
for i = 1, 1000000 do t[i] = string.rep("x", 20) .. i end
print(#t)'
}
w_python() {
    "${PYTHON3:-/usr/bin/python3}" -c '
import json, hashlib
for _ in range('"${PY_ROUNDS:-1}"' - 1):
    json.loads(json.dumps([{"id": i, "name": "item%d" % i, "tags": ["a", "b", str(i % 7)], "v": i * 0.5} for i in range(15000)], sort_keys=True))
data = [{"id": i, "name": "item%d" % i, "tags": ["a", "b", str(i % 7)], "v": i * 0.5} for i in range(15000)]
text = json.dumps(data, sort_keys=True)
back = json.loads(text)
print(len(text), len(back), hashlib.md5(text.encode()).hexdigest())'
}
w_python_big() {
    "${PYTHON3:-/usr/bin/python3}" -c '
import json
data = [{"id": i, "payload": "x" * 100} for i in range(300000)]
print(len(json.dumps(data)))'
}
w_perl() {
    perl -e '
my $text = join(" ", map { "word$_ number " . ($_ * 31 % 977) } 1 .. 30000);
my %seen; $seen{$1}++ while $text =~ /number (\d+)/g;
(my $copy = $text) =~ s/word(\d+)/W$1/g;
print scalar(keys %seen), " ", length($copy), "\n";'
}
w_gawk() { gawk '{ c[$1 % 1000]++ } END { n = 0; for (k in c) n += c[k] * k; print n, length(c) }' "$INPUTS/numbers.txt"; }
w_jq() { seq 1 50000 | jq -s 'map(. * 2) | add, length, (map(select(. % 3 == 0)) | length)'; }
w_bash() {
    bash -c 'for i in $(seq 1 300); do echo $i; done | (while read -r x; do echo $((x * x)); done) | sort -n | tail -1
             y=$( (echo a; echo b) | wc -l ); echo "$y"'
}
w_make() { cp "$INPUTS"/proj/* . && make -s CC=gcc > /dev/null && ./app; }
w_git() {
    export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.org
    export GIT_AUTHOR_DATE='2020-01-01T00:00:00Z' GIT_COMMITTER_DATE='2020-01-01T00:00:00Z'
    git init -q -b main . && seq 1 1000 > f.txt && git add f.txt && git commit -q -m first && git rev-parse HEAD
}

