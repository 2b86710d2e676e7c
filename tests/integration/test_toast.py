# SPDX-License-Identifier: MIT
"""Unchanged TOASTed values in updates.

wal2json leaves an unchanged TOASTed column out of an update's new row.
Under REPLICA IDENTITY FULL the old row carries it, and walcast completes
the new row from it; under the default identity the value stays absent
(walcast never invents one).  pgoutput says which columns it left out:
their names are the line's `missing` (docs/file-format.md); wal2json does
not say, and the line has no `missing`.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

# random-looking text does not compress, so it is stored out of line
BIG = "".join("%08x" % ((i * 2654435761) & 0xffffffff) for i in range(1500))


def test():
    c = h.Cluster()
    c.sql('CREATE SCHEMA "org-acme";'
          'CREATE TABLE "org-acme".full_t (id int PRIMARY KEY, small text, '
          '  big text);'
          'ALTER TABLE "org-acme".full_t REPLICA IDENTITY FULL;'
          'ALTER TABLE "org-acme".full_t ALTER big SET STORAGE EXTERNAL;'
          'CREATE TABLE "org-acme".dflt_t (id int PRIMARY KEY, small text, '
          '  big text);'
          'ALTER TABLE "org-acme".dflt_t ALTER big SET STORAGE EXTERNAL;')
    out = os.path.join(c.tmp, "out.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "w.yaml"), c.dsn(), "toast", out)
    d = h.start_walcastd(cfg, c.tmp)
    c.sql("INSERT INTO \"org-acme\".full_t VALUES (1, 'a', '%s');"
          "INSERT INTO \"org-acme\".dflt_t VALUES (1, 'a', '%s');"
          "UPDATE \"org-acme\".full_t SET small = 'b' WHERE id = 1;"
          "UPDATE \"org-acme\".dflt_t SET small = 'b' WHERE id = 1;"
          % (BIG, BIG))
    cnt = h.LineCounter(out)
    h.wait_until(lambda: cnt() >= 4, timeout=30, what="4 lines")
    d.stop()
    lines = h.read_jsonl(out)
    updates = {e["table"]: e for e in lines if e["op"] == "update"}
    check(set(updates) == {"full_t", "dflt_t"}, "updates: %r" % list(updates))

    full = {col["name"]: col["value"] for col in updates["full_t"]["columns"]}
    check(full.get("small") == "b", "full_t small: %r" % full.get("small"))
    check(full.get("big") == BIG,
          "REPLICA IDENTITY FULL: the unchanged TOASTed value must be "
          "completed from the old row (got %r)" % (full.get("big") or "")[:40])
    check(list(full) == ["id", "small", "big"],
          "full_t: the new row first, then the completed columns: %r"
          % list(full))

    dflt = {col["name"]: col["value"] for col in updates["dflt_t"]["columns"]}
    check(dflt.get("small") == "b", "dflt_t small: %r" % dflt.get("small"))
    check("big" not in dflt,
          "default identity: the unchanged TOASTed value is not sent by "
          "wal2json and must stay absent, not invented (got %r)"
          % (dflt.get("big") or "")[:40])
    # what the decoder says it left out, and only that
    check("missing" not in updates["full_t"],
          "full_t: nothing is missing once completed: %r"
          % updates["full_t"].get("missing"))
    check(list(updates["full_t"])[-2:] == ["completed", "last"],
          "full_t: completed is the last key before last: %r"
          % list(updates["full_t"]))
    if h.DECODER == "pgoutput":
        check(updates["dflt_t"].get("missing") == ["big"],
              "pgoutput, default identity: the line must name the unchanged "
              "TOASTed column it lacks in \"missing\" (got %r)"
              % updates["dflt_t"].get("missing"))
        check(list(updates["dflt_t"])[-2:] == ["missing", "last"],
              "dflt_t: missing is the last key before last: %r"
              % list(updates["dflt_t"]))
    else:
        check("missing" not in updates["dflt_t"],
              "wal2json does not say what it left out: %r"
              % updates["dflt_t"].get("missing"))
    h.log("TOAST: FULL completed from the old row, DEFAULT left absent")


if __name__ == "__main__":
    h.main(test)
