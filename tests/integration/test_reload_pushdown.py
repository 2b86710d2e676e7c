# SPDX-License-Identifier: MIT
"""A reload that changes what wal2json is asked to skip (its "actions",
"add-tables" and "filter-tables" options, from filter.ops,
filter.tables.include, filter.tables.exclude and literal
filter.schemas.exclude) restarts the stream with the new options, so that
after "reloaded" exactly what the new filter selects arrives: widened, the
changes wal2json skipped before now come through; narrowed, nothing the
filter drops is written.

Each step writes a filter, sends SIGHUP, waits for the reload, then runs
the same workload on ids of its own and compares the file sink's lines of
those ids with what the filter selects.  A restart at the end delivers
nothing twice and nothing new.
"""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

ALL_OPS = ["insert", "update", "delete", "truncate"]

# (label, filter as harness.write_config takes it)
STEPS = [
    ("start: rfa inserts only",
     {"tables": {"include": ["public.rfa"]}, "ops": ["insert"]}),
    # the reproduction: rfb's insert and rfa's delete were lost
    ("widen tables.include and ops",
     {"tables": {"include": ["public.rfa", "public.rfb"]},
      "ops": ["insert", "delete"]}),
    ("narrow tables.include and ops",
     {"tables": {"include": ["public.rfa"]}, "ops": ["insert"]}),
    ("widen to every table and op; exclude schema scratch",
     {"schemas": {"exclude": ["scratch"]}}),
    ("widen schemas.exclude (scratch wanted)", {}),
    ("narrow schemas.exclude (scratch dropped)",
     {"schemas": {"exclude": ["scratch"]}}),
    ("narrow tables.exclude (rfb dropped)",
     {"schemas": {"exclude": ["scratch"]},
      "tables": {"exclude": ["public.rfb"]}}),
    ("widen tables.exclude (rfb wanted)",
     {"schemas": {"exclude": ["scratch"]}}),
    ("narrow ops (updates only)",
     {"ops": ["update"], "tables": {"include": ["public.rfa", "public.rfb"]}}),
]

TABLES = [("public", "rfa"), ("public", "rfb"), ("scratch", "s")]


def workload(base):
    """SQL and the changes it makes: (op, schema, table, id)."""
    sql, changes = [], []
    for i, (schema, table) in enumerate(TABLES):
        rid = base + i
        q = '"%s"."%s"' % (schema, table)
        sql.append("INSERT INTO %s VALUES (%d, 'new');" % (q, rid))
        sql.append("UPDATE %s SET v = 'upd' WHERE id = %d;" % (q, rid))
        sql.append("DELETE FROM %s WHERE id = %d;" % (q, rid))
        changes += [("insert", schema, table, rid),
                    ("update", schema, table, rid),
                    ("delete", schema, table, rid)]
    return sql, changes


def selected(filt, change):
    op, schema, table, _ = change
    ops = filt.get("ops", ALL_OPS)
    if op not in ops:
        return False
    name = schema + "." + table
    inc = filt.get("tables", {}).get("include")
    if inc and name not in inc:
        return False
    if schema in filt.get("schemas", {}).get("exclude", []):
        return False
    return name not in filt.get("tables", {}).get("exclude", [])


def row_id(rec):
    for key in ("columns", "identity"):
        for col in rec.get(key) or []:
            if col["name"] == "id":
                return int(col["value"])
    return None


def got_changes(out):
    return [(r["op"], r["schema"], r["table"], row_id(r))
            for r in h.read_jsonl(out, complete_only=True)
            if r.get("op") in ALL_OPS]


def test():
    c = h.Cluster()
    c.sql("CREATE SCHEMA scratch;"
          "CREATE TABLE public.rfa (id int PRIMARY KEY, v text);"
          "CREATE TABLE public.rfb (id int PRIMARY KEY, v text);"
          "CREATE TABLE scratch.s (id int PRIMARY KEY, v text);"
          "CREATE TABLE public.sentinel (id int PRIMARY KEY, v text);")
    out = os.path.join(c.tmp, "out.jsonl")
    cfg = os.path.join(c.tmp, "w.yaml")

    def write(filt):
        # the sentinel passes every filter: an insert, by table include
        # where there is one
        f = {k: (dict(v) if isinstance(v, dict) else v)
             for k, v in filt.items()}
        if "tables" in f and "include" in f["tables"]:
            f["tables"]["include"] = f["tables"]["include"] + [
                "public.sentinel"]
        if "ops" in f and "insert" not in f["ops"]:
            f["ops"] = f["ops"] + ["insert"]
        h.write_config(cfg, c.dsn(), "rfp", out, filt=f)
        return f

    effective = write(STEPS[0][1])
    d = h.start_walcastd(cfg, c.tmp)
    expected = []
    failures = []
    for k, (label, filt) in enumerate(STEPS):
        if k > 0:
            effective = write(filt)
            n = d.stderr().count("reloaded ")
            d.send(signal.SIGHUP)
            h.wait_until(lambda: d.stderr().count("reloaded ") > n,
                         timeout=20, what="reload %d applied" % k)
        base = 1000 * (k + 1)
        sql, changes = workload(base)
        c.sql("".join(sql))
        c.sql("INSERT INTO public.sentinel VALUES (%d, 's');" % base)
        want = [ch for ch in changes if selected(effective, ch)]
        expected += want
        h.wait_until(lambda: ("insert", "public", "sentinel", base)
                     in got_changes(out), timeout=30,
                     what="the sentinel of step %d (%s)\n%s"
                     % (k, label, d.describe()))
        got = [g for g in got_changes(out)
               if g[3] is not None and base <= g[3] < base + 100 and
               g[2] != "sentinel"]
        h.log("step %d (%s): %d changes, %d expected"
              % (k, label, len(got), len(want)))
        if sorted(got) != sorted(want):
            failures.append("step %d (%s): got %r\nwant %r"
                            % (k, label, sorted(got), sorted(want)))
    check(not failures, "\n".join(failures) + "\n" + d.describe())
    check("streaming again from" in d.stderr(),
          "no restart of the stream was logged\n" + d.describe())
    d.stop()

    # a restart reads nothing again and finds nothing that was skipped
    before = got_changes(out)
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-again")
    c.sql("INSERT INTO public.sentinel VALUES (99999, 'end');")
    h.wait_until(lambda: ("insert", "public", "sentinel", 99999)
                 in got_changes(out), timeout=30, what="the last sentinel")
    d.stop()
    after = got_changes(out)
    check(after[:len(before)] == before and
          after[len(before):] == [("insert", "public", "sentinel", 99999)],
          "after a restart: %r" % after[len(before):])
    data = [g for g in after if g[2] != "sentinel"]
    check(sorted(data) == sorted(expected),
          "the file holds other changes than the filters selected")


if __name__ == "__main__":
    h.main(test)
