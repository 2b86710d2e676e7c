# SPDX-License-Identifier: MIT
"""systemd notification and reload.

A fake $NOTIFY_SOCKET receives, in order: READY=1 once the slot streams,
STATUS= lines, WATCHDOG=1 at half of $WATCHDOG_USEC, RELOADING=1 with
MONOTONIC_USEC and then READY=1 on SIGHUP, and STOPPING=1 at shutdown.  A
good reload applies a new filter at a transaction boundary without losing
a change; a bad one is refused and the configuration in force stays.
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402


def test():
    c = h.Cluster()
    c.sql('CREATE SCHEMA "town6-a"; CREATE SCHEMA "org-b";'
          'CREATE TABLE "town6-a".t (id int PRIMARY KEY);'
          'CREATE TABLE "org-b".t (id int PRIMARY KEY);')
    out = os.path.join(c.tmp, "out.jsonl")
    cfg = os.path.join(c.tmp, "w.yaml")
    h.write_config(cfg, c.dsn(), "sd", out)
    n = h.Notify(os.path.join(c.tmp, "notify.sock"))
    d = n.start_walcastd(cfg, c.tmp)

    ready = n.wait_for(lambda m: m.startswith("READY=1"), 10, "READY=1")
    n.wait_for(lambda m: m == "WATCHDOG=1", 5, "WATCHDOG=1")
    time.sleep(1.6)  # a few more watchdog periods (500 ms each)
    n.drain()
    pings = [t for t, m in n.msgs if m == "WATCHDOG=1"]
    check(len(pings) >= 3, "expected a WATCHDOG=1 every 500 ms, got %d in "
          "~2 s" % len(pings))
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    check(max(gaps) < 0.9, "watchdog gaps too long: %r" % gaps)
    n.wait_for(lambda m: m.startswith("STATUS=streaming slot sd: confirmed"),
               5, "STATUS=")

    # both schemas flow
    c.sql('INSERT INTO "town6-a".t VALUES (1); INSERT INTO "org-b".t '
          'VALUES (1);')
    cnt = h.LineCounter(out)
    h.wait_until(lambda: cnt() >= 2, timeout=20, what="2 lines")

    # a bad config is refused; the old one stays in force
    good = open(cfg).read()
    with open(cfg, "w") as f:
        f.write(good + "bogus: 1\n")
    mark = len(n.msgs)
    d.send(signal.SIGHUP)
    n.wait_for(lambda m: m.startswith("READY=1\nSTATUS=reload refused"), 10,
               "READY=1 after a refused reload")
    rel = n.index(lambda m: m.startswith("RELOADING=1\nMONOTONIC_USEC="),
                  mark)
    check(rel >= 0, "no RELOADING=1 with MONOTONIC_USEC before the refusal")
    h.wait_until(lambda: "reload refused" in d.stderr(), timeout=5,
                 what="the refusal logged")
    check('unknown key "bogus"' in d.stderr(),
          "the refusal names the bad key:\n" + d.stderr())
    # so is one with a sink that could not start (checked as --check
    # does), before the sinks in force are let go
    with open(cfg, "w") as f:
        f.write(good + '  - kafka:\n      topic: "{schema}.{table}"\n'
                '      properties:\n'
                '        bootstrap.servers: "127.0.0.1:9"\n'
                '        compresion.type: lz4\n')
    d.send(signal.SIGHUP)
    h.wait_until(lambda: d.stderr().count("reload refused") == 2, timeout=10,
                 what="the second refusal logged")
    check('"compresion.type"' in d.stderr(),
          "the refusal names the Kafka property:\n" + d.stderr())
    c.sql('INSERT INTO "town6-a".t VALUES (2); INSERT INTO "org-b".t '
          'VALUES (2);')
    h.wait_until(lambda: cnt() >= 4, timeout=20, what="4 lines")

    # a good reload: org-* excluded from now on; nothing lost around it
    with open(cfg, "w") as f:
        f.write(good + 'filter:\n  schemas:\n    exclude: ["org-*"]\n')
    mark = len(n.msgs)
    d.send(signal.SIGHUP)
    h.wait_until(lambda: "reloaded" in d.stderr(), timeout=10,
                 what="the reload applied")
    n.drain()
    rel = n.index(lambda m: m.startswith("RELOADING=1\nMONOTONIC_USEC="),
                  mark)
    rdy = n.index(lambda m: m == "READY=1", max(rel, 0))
    check(rel >= 0 and rdy > rel, "RELOADING=1 then READY=1 expected: %r"
          % [m for _, m in n.msgs[mark:]])
    c.sql('INSERT INTO "town6-a".t VALUES (3); INSERT INTO "org-b".t '
          'VALUES (3);')
    c.sql('INSERT INTO "town6-a".t VALUES (4);')
    h.wait_until(lambda: cnt() >= 6, timeout=20, what="6 lines")
    time.sleep(0.5)

    mark = len(n.msgs)
    d.stop()
    n.drain()
    check(n.index(lambda m: m == "STOPPING=1", mark) >= 0,
          "no STOPPING=1 at shutdown: %r" % [m for _, m in n.msgs[mark:]])
    check(ready < rel, "READY=1 must come first")

    got = [(e["schema"], int(e["columns"][0]["value"]))
           for e in h.read_jsonl(out)]
    want = [("town6-a", 1), ("org-b", 1), ("town6-a", 2), ("org-b", 2),
            ("town6-a", 3), ("town6-a", 4)]
    check(got == want, "changes around the reloads: %r, expected %r"
          % (got, want))
    h.log("notifications: %d, watchdog gaps %.2f-%.2f s"
          % (len(n.msgs), min(gaps), max(gaps)))


if __name__ == "__main__":
    h.main(test)
