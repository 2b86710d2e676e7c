# SPDX-License-Identifier: MIT
"""Chaos: PostgreSQL restarted under walcastd, fast and immediate.

While a workload over four tenant schemas streams to walcastd's file sink
(fsync), the server is restarted with `pg_ctl restart -m fast` and later
with `pg_ctl restart -m immediate` (a crash: recovery on start, and the
slot's position as last saved).  The writers see their connections fail
and go on after the restart; walcastd must reconnect by itself, with its
backoff — the same process throughout — and in the end every change that
committed, as the database records it, must be in the file, and none
twice: the file sink keeps its position in the file, although the server
replays from the slot's last saved position.

Prints one line: CHAOS {"test":"pg-restart",...}.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

CHANGES = 24000
WRITE_SECONDS = 16
MODES = ("fast", "immediate")


def streams(err):
    """How many times walcastd started streaming: a start that needed
    retries says "streaming again after N failed attempts" instead (its
    "streaming changes from" line is at debug level then)."""
    return (err.count("streaming changes from")
            + err.count("streaming again after"))


def test():
    rng = h.chaos_seed()
    c = h.Cluster()
    w = h.ChaosWorkload(c, rng, big_every=80)
    w.setup()
    out = os.path.join(c.tmp, "changes.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "restart.yaml"), c.dsn(),
                         "pg_restart", out,
                         filt={"schemas": {"include": [h.CHAOS_SCHEMA_GLOB]}})
    lines = h.LineCounter(out)
    t0 = time.monotonic()
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-pgrestart")
    w.start(CHANGES, seconds=WRITE_SECONDS)
    for i, mode in enumerate(MODES):
        # a random moment in the i-th third of the writing, mid-stream
        at = WRITE_SECONDS * (i + rng.uniform(0.3, 0.9)) / 3
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        check(d.poll() is None, "walcastd exited\n" + d.describe())
        s = c.slot("pg_restart")
        n = lines()
        tr = time.monotonic()
        c.pg_ctl("restart", "-m", mode, "-w", "-t", "60", "-l", c.logfile)
        h.log("pg_ctl restart -m %s at %.1fs (%d lines written, slot "
              "confirmed %s) took %.1fs" % (mode, tr - t0, n,
                                            s["confirmed_flush_lsn"],
                                            time.monotonic() - tr))
        # walcastd comes back by itself
        h.wait_until(lambda: streams(d.stderr()) >= i + 2
                     or d.poll() is not None, timeout=90,
                     what=lambda: "walcastd to reconnect after the restart "
                     "-m %s; stderr:\n%s" % (mode, d.stderr()[-2000:]))
        check(d.poll() is None, "walcastd exited after the restart -m %s\n%s"
              % (mode, d.describe()))
    w.wait()
    target = c.wait_flushed()
    h.chaos_wait_confirmed(c, "pg_restart", target, [d], timeout=180)
    secs = time.monotonic() - t0
    d.stop()
    err = d.stderr()
    retries = err.count(">replaying from ")
    h.log("walcastd (one process) reconnected %d times, %d scheduled "
          "retries; writers saw %d failed scripts"
          % (streams(err) - 1, retries,
             len(w.failures)))
    h.chaos_result("pg-restart", "pg_ctl restart -m fast, -m immediate",
                   w.expected(), h.chaos_read_lines(out, "op"), secs,
                   {"walcastd_retries": retries,
                    "client_failures": len(w.failures)}, exactly_once=True)


if __name__ == "__main__":
    h.main(test)
