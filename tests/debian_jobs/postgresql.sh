# tests/debian.rs postgresql_same_as_native: PostgreSQL (Debian's postgresql package) as the postgres user: initdb, pg_ctl start, createdb, psql (a table of 10 000 rows, an index, a join, a rollback, a savepoint, checkpoint), psql over TCP on 127.0.0.1 and ::1, pgbench -i -s 1 and -c 4 -t 200 over TCP (its invariants and failure count), stop, restart (the rows survive), stop, the server log's warnings; run by umlrun-job in the Debian guest and natively in a chroot. Times, pids and tps are not printed.
set -e
cd /tmp
B=$(echo /usr/lib/postgresql/*/bin) D=/tmp/pgdata L=/tmp/pg.log
trap 's=$?; [ $s = 0 ] || { echo "== job failed ($s)"; cat /tmp/initdb.log $L /tmp/bench.log; } >&2' EXIT
pg() { runuser -u postgres -- "$@"; }
export PGHOST=/tmp PGPORT=5433
pg $B/initdb -D $D -A trust -E UTF8 --locale=C >/tmp/initdb.log 2>&1
echo "initdb: $(cat $D/PG_VERSION)"
start() { pg $B/pg_ctl -D $D -l $L -w -t 120 -o "-k /tmp -p 5433 -c listen_addresses=localhost" start >/dev/null; echo "started: $(pg psql -XAtc 'select 1' postgres)"; }
# postmaster.pid's 7th line: the SysV shm segment's key and id, gone after a stop.
stop() { shm=$(sed -n 7p $D/postmaster.pid | awk '{print $2}'); pg $B/pg_ctl -D $D -w -t 120 -m fast stop >/dev/null; echo "stopped: $(ipcs -m | awk -v i=$shm '$2 == i { f = 1 } END { print f ? "shm left" : "shm removed" }')"; }
start
pg createdb shop
q() { pg psql -X -A -t -q -v ON_ERROR_STOP=1 "$@"; }
q shop <<'SQL'
create table item (id int primary key, k int not null, v text);
insert into item select g, g % 100, md5(g::text) from generate_series(1, 10000) g;
create index item_k on item (k);
create table cat (k int primary key, name text);
insert into cat select g, 'cat' || g from generate_series(0, 99) g;
analyze;
select 'rows', count(*), sum(id), min(v), max(v) from item;
select 'join', c.name, count(*), sum(i.id) from item i join cat c using (k) where k < 4 group by c.name order by 2;
set enable_seqscan = off;
explain (costs off) select count(*) from item where k = 42;
select 'k=42', count(*), sum(id) from item where k = 42;
reset enable_seqscan;
begin;
delete from item where id > 5000;
update item set v = 'x';
select 'in tx', count(*), count(distinct v) from item;
rollback;
select 'after rollback', count(*), count(distinct v) from item;
SQL
if q shop -c "insert into item values (1, 3, 'dup')" 2>/tmp/dup.err; then echo "duplicate key: accepted"; else echo "duplicate key: $(grep -o 'duplicate key value violates unique constraint "[a-z_]*"' /tmp/dup.err)"; fi
q shop <<'SQL'
begin;
insert into item values (10001, 1, 'a');
savepoint s;
insert into item values (10002, 2, 'b');
rollback to s;
commit;
checkpoint;
select 'committed', count(*), max(id), md5(string_agg(v, ',' order by id)) from item;
SQL
pg createdb bench
echo "tcp: $(pg psql -h 127.0.0.1 -XAtc 'select inet_client_addr()' bench) $(pg psql -h ::1 -XAtc 'select inet_client_addr()' bench)"
pg pgbench -i -s 1 -q bench >/tmp/bench.log 2>&1
pg pgbench -n -c 4 -t 200 -h localhost bench >>/tmp/bench.log 2>&1
grep -E '^(scaling factor|query mode|number of clients|number of transactions actually processed|number of failed transactions)' /tmp/bench.log
q bench -c "select 'bench', (select count(*) from pgbench_history), (select sum(abalance) from pgbench_accounts) = (select sum(delta) from pgbench_history), (select sum(bbalance) from pgbench_branches) = (select sum(tbalance) from pgbench_tellers), (select count(*) from pgbench_accounts)"
stop
start
q shop -c "select 'restarted', count(*), md5(string_agg(v, ',' order by id)) from item"
stop
# The server's own complaints (a missing call shows up here, not in psql);
# a backend still ending when the fast stop comes says "terminating ...
# due to administrator command", natively too, at times.
w=$(grep -E ' (WARNING|FATAL|PANIC): ' $L | grep -v 'due to administrator command' | sed 's/^.*\] /server log: /' || true); echo "${w:-server log: no warnings}"
