# SPDX-License-Identifier: MIT
"""Chaos: kill -9 of walcastd, five times, with the jsonl plugin.

A 200,000-change workload over four tenant schemas (many smallish
transactions, some of 3,000 rows, from one connection per schema) runs
while walcastd, with the jsonl plugin (fsync before acknowledging), is
killed with SIGKILL at five random moments and started again after each.
Then every change that committed — as the database records it — must be
in the plugin's file; duplicates are counted, not failed.

Prints one line: CHAOS {"test":"kill9-jsonl",...}.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import fail  # noqa: E402

CHANGES = 200000
KILLS = 5


def test():
    so = os.environ.get("WC_JSONL_SO")
    if not so:
        fail("WC_JSONL_SO is not set (plugins/jsonl is not built)")
    rng = h.chaos_seed()
    c = h.Cluster()
    w = h.ChaosWorkload(c, rng)
    w.setup()
    out = os.path.join(c.tmp, "audit.jsonl")
    sink = ("sinks:\n  - plugin:\n      path: %s\n      config:\n"
            "        file: %s\n        fsync: \"true\"\n" % (h.yq(so),
                                                            h.yq(out)))
    cfg = h.write_config(os.path.join(c.tmp, "kill9.yaml"), c.dsn(), "kill9",
                         None,
                         filt={"schemas": {"include": [h.CHAOS_SCHEMA_GLOB]}},
                         extra=sink)
    lines = h.LineCounter(out)
    secs, mid = h.chaos_kill9_run(c, rng, cfg, "kill9", w, lines,
                                  kills=KILLS, changes=CHANGES)
    h.chaos_result("kill9-jsonl", "%dx kill -9" % KILLS, w.expected(),
                   h.chaos_read_lines(out, "signal"), secs,
                   {"kills_with_changes_in_flight": mid})


if __name__ == "__main__":
    h.main(test)
