# SPDX-License-Identifier: MIT
"""The warning for an update or delete wal2json skipped names its real
cause (issue 22 item 3), from the table's catalog entry:

- no primary key (REPLICA IDENTITY DEFAULT),
- REPLICA IDENTITY NOTHING on a table that has a primary key,
- REPLICA IDENTITY USING INDEX whose index was dropped;

looked up once per table on an ordinary connection (application_name
walcast-catalog, counted in the server's log), and at start for every
included table.  A lookup that cannot connect falls back to naming the
possible causes.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

TABLES = ("nopk", "nothing_t", "dropped_t")
CAUSE = {
    "nopk": "has no primary key",
    "nothing_t": "has REPLICA IDENTITY NOTHING",
    "dropped_t": "has REPLICA IDENTITY USING INDEX, but that index was "
                 "dropped",
}

DDL = ("CREATE TABLE nopk (id int, v text);"
       "CREATE TABLE nothing_t (id int PRIMARY KEY, v text);"
       "ALTER TABLE nothing_t REPLICA IDENTITY NOTHING;"
       "CREATE TABLE dropped_t (id int NOT NULL, v text);"
       "CREATE UNIQUE INDEX dropped_t_id ON dropped_t (id);"
       "ALTER TABLE dropped_t REPLICA IDENTITY USING INDEX dropped_t_id;"
       "DROP INDEX dropped_t_id;"
       "CREATE TABLE fine (id int PRIMARY KEY, v text);")


def workload(c):
    sql = []
    for t in TABLES + ("fine",):
        sql.append("INSERT INTO %s VALUES (1, 'a'), (2, 'b');" % t)
        sql.append("UPDATE %s SET v = 'c';" % t)
        sql.append("DELETE FROM %s;" % t)
    c.sql("".join(sql))


def skipped(err):
    """{table: [warning lines]} of the skipped-change warnings."""
    out = {}
    for line in err.splitlines():
        m = re.search(r'wal2json skipped an? (UPDATE|DELETE) on table '
                      r'"public"\."(\w+)"', line)
        if m:
            out.setdefault(m.group(2), []).append(line)
    return out


def catalog_connections(c):
    with open(c.logfile, errors="replace") as f:
        return sum(1 for line in f
                   if "connection authorized" in line
                   and "application_name=walcast-catalog" in line)


def test_causes():
    c = h.Cluster(conf={"log_connections": "on"})
    c.sql(DDL)
    out = os.path.join(c.tmp, "out.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "w.yaml"), c.dsn(), "identw",
                         out)
    d = h.start_walcastd(cfg, c.tmp)
    # the start check names each table and its cause
    h.wait_until(lambda: '"nothing_t" has' in d.stderr(), timeout=15,
                 what="the start check")
    start = d.stderr()
    for t in TABLES:
        check(('"public"."%s" %s' % (t, CAUSE[t])) in start,
              "start check: no line for %s with %r:\n%s" % (t, CAUSE[t], start))
    check('"fine"' not in start, "start check named a fine table:\n" + start)
    at_start = catalog_connections(c)
    check(at_start == 1, "one catalog connection at start, not %d" % at_start)

    workload(c)
    # (the log folds a repeated line into "repeated N more times")
    h.wait_until(lambda: len(skipped(d.stderr())) == 3 and
                 all(len(v) >= 2 for v in skipped(d.stderr()).values()),
                 timeout=30, what="UPDATE and DELETE warnings of 3 tables")
    cnt = h.LineCounter(out)
    h.wait_until(lambda: cnt() >= 12, timeout=30, what="12 lines")
    d.stop()
    sk = skipped(d.stderr())
    for t in TABLES:
        for line in sk[t]:
            check(CAUSE[t] in line,
                  "%s: the warning must name the cause %r: %s"
                  % (t, CAUSE[t], line))
            check("its updates and deletes are lost" in line, line)
    for line in sk["nothing_t"] + sk["dropped_t"]:
        check("add a primary key" not in line,
              "a table with a primary key told to add one: " + line)
    # two updates and two deletes per table: one lookup per table
    n = catalog_connections(c) - at_start
    check(n == 3, "catalog lookups: %d, want one per table (3)" % n)
    h.log("skipped-change warnings name no pk / NOTHING / dropped index, "
          "one lookup per table")


def test_lookup_fails():
    """A role with CONNECTION LIMIT 0: walsenders are not counted, so the
    stream runs, but the lookup is refused; the warning names the possible
    causes and why the lookup failed."""
    c = h.Cluster()
    c.sql(DDL + "CREATE ROLE walrep LOGIN REPLICATION CONNECTION LIMIT 0;"
          "GRANT SELECT ON ALL TABLES IN SCHEMA public TO walrep;")
    out = os.path.join(c.tmp, "out.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "w.yaml"), c.dsn(user="walrep"),
                         "identf", out)
    d = h.start_walcastd(cfg, c.tmp)
    workload(c)
    h.wait_until(lambda: len(skipped(d.stderr())) == 3, timeout=30,
                 what="warnings for 3 tables")
    d.stop()
    err = d.stderr()
    check("could not check the replica identity" in err,
          "the start check's failure is not said:\n" + err)
    for t, lines in skipped(err).items():
        for line in lines:
            check("has no primary key, has REPLICA IDENTITY NOTHING, or its "
                  "replica identity index was dropped" in line and
                  "looking it up in the catalog failed" in line,
                  "%s: the fallback must name the possible causes and the "
                  "failure: %s" % (t, line))
    h.log("a failed lookup names the possible causes")


def test():
    test_causes()
    test_lookup_fails()


if __name__ == "__main__":
    h.main(test)
