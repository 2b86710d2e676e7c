# SPDX-License-Identifier: MIT
"""A plugin that watches more than 64 descriptors still gets their events.

walcastd's poll() once had room for 64 plugin descriptors and silently
left out the rest: a sink with a pool of connections would never hear
from its 65th, and stall.  The recorder plugin watches 100 descriptors
that never become ready, then the timer through which it acknowledges
its pending commits: every transaction must be acknowledged and the
slot's confirmed position must reach the end of the WAL.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SPARE = 100
TXNS = 5


def test():
    c = h.Cluster()
    c.sql("CREATE TABLE fds (id int PRIMARY KEY, v text)")
    out = os.path.join(c.tmp, "recorder.jsonl")
    sink = h.recorder_sink_yaml({"out": out, "pending": "true",
                                 "spare_fds": SPARE})
    cfg = h.write_config(os.path.join(c.tmp, "fds.yaml"), c.dsn(), "fds",
                         None, status_interval="250ms",
                         extra="sinks:\n" + sink)
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-fds")
    for i in range(TXNS):
        c.sql("INSERT INTO fds VALUES (%d, 'x')" % i)
    target = c.wait_flushed()
    h.chaos_wait_confirmed(c, "fds", target, [d], timeout=30,
                           what="the slot to confirm past the inserts "
                                "(the plugin's descriptor number %d "
                                "polled)" % (SPARE + 1))
    d.stop()
    commits, acks = set(), set()
    with open(out) as f:
        for line in f:
            e = json.loads(line)
            if e["kind"] == "commit" and e.get("pending"):
                commits.add(e["txn_id"])
            elif e["kind"] == "ack":
                acks.add(e["txn_id"])
    check(len(commits) >= TXNS, "the plugin saw %d pending commits, not %d"
          % (len(commits), TXNS))
    check(commits <= acks, "commits never acknowledged: %s"
          % sorted(commits - acks))


if __name__ == "__main__":
    h.main(test)
