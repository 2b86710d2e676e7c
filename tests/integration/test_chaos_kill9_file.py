# SPDX-License-Identifier: MIT
"""Chaos: kill -9 of walcastd, five times, with the file sink.

The same workload as test_chaos_kill9_jsonl (many smallish transactions
and some of 3,000 rows, over four tenant schemas) while walcastd, with
the file sink (fsync), is killed with SIGKILL at five random moments and
started again after each.  The file sink keeps its position in the file
(docs/file-format.md): every change that committed must be in the file,
and none twice.

Prints one line: CHAOS {"test":"kill9-file",...}.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

CHANGES = 200000
KILLS = 5


def test():
    rng = h.chaos_seed()
    c = h.Cluster()
    w = h.ChaosWorkload(c, rng)
    w.setup()
    out = os.path.join(c.tmp, "changes.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "kill9.yaml"), c.dsn(),
                         "kill9_file", out,
                         filt={"schemas": {"include": [h.CHAOS_SCHEMA_GLOB]}})
    lines = h.LineCounter(out)
    secs, mid = h.chaos_kill9_run(c, rng, cfg, "kill9_file", w, lines,
                                  kills=KILLS, changes=CHANGES)
    check(mid >= 1, "no kill left changes in flight: the test shows nothing")
    h.chaos_result("kill9-file", "%dx kill -9" % KILLS, w.expected(),
                   h.chaos_read_lines(out, "op"), secs,
                   {"kills_with_changes_in_flight": mid}, exactly_once=True)


if __name__ == "__main__":
    h.main(test)
