# SPDX-License-Identifier: MIT
"""Unchanged TOASTed values whatever the replica identity (issue 22).

r1 (a, t) and r2 (a, t, c), t stored EXTERNAL and TOASTed, under
REPLICA IDENTITY FULL and under USING INDEX on a unique index (a, t):
after `UPDATE ... SET a = 2` wal2json leaves t out of the new row and
sends it in the identity; walcast completes it in every case, in table
order, and says so in "completed".  A DEFAULT table's unchanged TOASTed
column is in no list: it stays absent, and the line cannot say so
(wal2json does not tell), so it has no "completed".
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

# random-looking text does not compress; short enough for a btree entry,
# long enough that the row goes over the TOAST threshold
BIG = "".join("%08x" % ((i * 2654435761) & 0xffffffff) for i in range(300))


def test():
    c = h.Cluster()
    ddl = []
    for kind in ("full", "idx"):
        ddl += ["CREATE TABLE r1_%s (a int NOT NULL, t text NOT NULL);" % kind,
                "CREATE TABLE r2_%s (a int NOT NULL, t text NOT NULL, c int);"
                % kind]
        for t in ("r1_" + kind, "r2_" + kind):
            ddl.append("ALTER TABLE %s ALTER t SET STORAGE EXTERNAL;" % t)
            if kind == "full":
                ddl.append("ALTER TABLE %s REPLICA IDENTITY FULL;" % t)
            else:
                ddl.append("CREATE UNIQUE INDEX %s_at ON %s (a, t);"
                           "ALTER TABLE %s REPLICA IDENTITY USING INDEX %s_at;"
                           % (t, t, t, t))
    ddl += ["CREATE TABLE d (id int PRIMARY KEY, small text, big text);",
            "ALTER TABLE d ALTER big SET STORAGE EXTERNAL;"]
    c.sql("".join(ddl))
    out = os.path.join(c.tmp, "out.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "w.yaml"), c.dsn(), "toastid",
                         out)
    d = h.start_walcastd(cfg, c.tmp)
    tables = ("r1_full", "r2_full", "r1_idx", "r2_idx")
    sql = []
    for t in tables:
        cols = "(a, t)" if t.startswith("r1") else "(a, t, c)"
        vals = "(1, '%s')" % BIG if t.startswith("r1") else \
            "(1, '%s', 7)" % BIG
        sql.append("INSERT INTO %s %s VALUES %s;" % (t, cols, vals))
    sql.append("INSERT INTO d VALUES (1, 'a', '%s');" % BIG)
    for t in tables:
        sql.append("UPDATE %s SET a = 2;" % t)
    sql.append("UPDATE d SET small = 'b';")
    c.sql("".join(sql))
    # the value really went out of line
    for t in tables + ("d",):
        n = c.sql_value("SELECT pg_relation_size(reltoastrelid) FROM pg_class "
                        "WHERE relname = '%s'" % t)
        check(int(n) > 0, "%s: nothing went to its TOAST table" % t)
    cnt = h.LineCounter(out)
    h.wait_until(lambda: cnt() >= 10, timeout=30, what="10 lines")
    d.stop()
    lines = h.read_jsonl(out)
    updates = {e["table"]: e for e in lines if e["op"] == "update"}
    check(set(updates) == set(tables) | {"d"},
          "updates: %r" % sorted(updates))
    for t in tables:
        e = updates[t]
        names = [col["name"] for col in e["columns"]]
        want = ["a", "t"] if t.startswith("r1") else ["a", "t", "c"]
        check(names == want,
              "%s: the unchanged TOASTed t must be completed from the "
              "identity, in table order: columns %r, want %r"
              % (t, names, want))
        row = {col["name"]: col["value"] for col in e["columns"]}
        check(str(row["a"]) == "2" and row["t"] == BIG,
              "%s: values a=%r t=%r..." % (t, row["a"], row["t"][:16]))
        if t.startswith("r2"):
            check(str(row["c"]) == "7", "%s: c=%r" % (t, row["c"]))
        check(e.get("completed") == ["t"],
              "%s: the line must say which columns were completed: %r"
              % (t, e.get("completed")))

    dflt = updates["d"]
    names = [col["name"] for col in dflt["columns"]]
    check(names == ["id", "small"],
          "DEFAULT: big is in no list wal2json sent and must stay absent: "
          "%r" % names)
    check("completed" not in dflt,
          "DEFAULT: nothing was completed: %r" % dflt.get("completed"))
    h.log("TOAST completion: r1, r2 under FULL and USING INDEX complete, "
          "in table order, with \"completed\"; DEFAULT left absent")


if __name__ == "__main__":
    h.main(test)
