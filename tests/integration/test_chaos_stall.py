# SPDX-License-Identifier: MIT
"""Chaos: a sink stalled for longer than wal_sender_timeout.

The server's wal_sender_timeout is 5 s.  Mid-stream the recorder plugin
holds every acknowledgement for 12 s and calls host->throttle, so
walcastd stops reading the replication stream while the connection stays
up.  walcastd must keep sending status messages: the same walsender (pid
in pg_stat_replication) serves the slot throughout, the server never logs
"terminating walsender process due to replication timeout", walcastd
never reconnects, nothing is confirmed during the stall, and afterwards
every committed change — as the database records it — is delivered.
status_interval is 10 s, longer than wal_sender_timeout: while it does
not read, walcastd answers the server at least every second anyway.

Prints one line: CHAOS {"test":"stall-sink",...}.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, fail  # noqa: E402

CHANGES = 24000
WRITE_SECONDS = 20
STALL_SECONDS = 12
SENDER_TIMEOUT = "5s"
TIMEOUT_MSG = "terminating walsender process due to replication timeout"


def walsender_pids(c, slot):
    return c.sql_rows(
        "SELECT s.pid::text FROM pg_stat_replication s JOIN "
        "pg_replication_slots r ON r.active_pid = s.pid WHERE r.slot_name "
        "= '%s'" % slot, 1)


def test():
    rng = h.chaos_seed()
    # log_min_messages 'log': the timeout message is a LOG line
    c = h.Cluster(conf={"wal_sender_timeout": SENDER_TIMEOUT,
                        "log_min_messages": "log"})
    w = h.ChaosWorkload(c, rng, big_every=0)
    w.setup()
    out = os.path.join(c.tmp, "recorder.jsonl")
    # the stall begins at the 40th commit, a few seconds into the stream
    sink = h.recorder_sink_yaml({"out": out, "pending": "true",
                                 "stall_at_commit": 40,
                                 "stall_seconds": STALL_SECONDS})
    # status_interval (10 s, the default) above wal_sender_timeout (5 s):
    # while reading waits, the server's keepalive requests go unread, and
    # walcastd must answer at least every second on its own
    cfg = h.write_config(os.path.join(c.tmp, "stall.yaml"), c.dsn(),
                         "stall", None, status_interval="10s",
                         filt={"schemas": {"include": [h.CHAOS_SCHEMA_GLOB]}},
                         extra="sinks:\n" + sink)
    logpos = os.path.getsize(c.logfile)
    t0 = time.monotonic()
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-stall")
    pids = h.wait_until(lambda: walsender_pids(c, "stall"), timeout=30,
                        what="the walsender of slot stall")
    pid = pids[0][0]
    w.start(CHANGES, seconds=WRITE_SECONDS)
    h.wait_until(lambda: "stalling:" in d.stderr() or d.poll() is not None,
                 timeout=60, what="the recorder to stall")
    check(d.poll() is None, "walcastd exited\n" + d.describe())
    t_stall = time.monotonic()
    h.log("stall began %.1fs in; walsender pid %s" % (t_stall - t0, pid))
    samples, held = 0, []
    while time.monotonic() - t_stall < STALL_SECONDS + 1:
        now = [r[0] for r in walsender_pids(c, "stall")]
        check(now == [pid], "%.1fs into the stall the slot's walsender is "
              "%s, not %s (server log:\n%s)" % (time.monotonic() - t_stall,
                                               now, pid, c.log_tail(10)))
        s = c.slot("stall")
        if "stall over" not in d.stderr():
            held.append(h.lsn_int(s["confirmed_flush_lsn"]))
        check(d.poll() is None, "walcastd exited\n" + d.describe())
        samples += 1
        time.sleep(0.5)
    check("stall over" in d.stderr(), "the stall did not end:\n"
          + d.stderr()[-2000:])
    # the first transaction whose acknowledgement the stall held: nothing
    # from it on may be confirmed during the stall
    first_held = None
    with open(out, "rb") as f:
        seen_stall = False
        for line in f:
            if line.startswith(b'{"kind":"stall"'):
                seen_stall = True
            elif seen_stall and line.startswith(b'{"kind":"commit"'):
                first_held = h.lsn_int(json.loads(line)["end_lsn"])
                break
    check(first_held is not None, "no commit after the stall began")
    check(held and max(held) < first_held,
          "confirmed %s during the stall, past the held transaction ending "
          "at %s" % (h.lsn_str(max(held)), h.lsn_str(first_held)))
    w.wait()
    target = c.wait_flushed()
    h.chaos_wait_confirmed(c, "stall", target, [d], timeout=120)
    secs = time.monotonic() - t0
    now = [r[0] for r in walsender_pids(c, "stall")]
    check(now == [pid], "after the stall the walsender is %s, not %s"
          % (now, pid))
    d.stop()
    with open(c.logfile, errors="replace") as f:
        f.seek(logpos)
        log = f.read()
    if TIMEOUT_MSG in log:
        fail("the server timed out the walsender:\n" + log[-3000:])
    err = d.stderr()
    check(err.count("connected to") == 1, "walcastd reconnected:\n"
          + err[-3000:])
    h.log("the same walsender (pid %s) throughout, %d samples, no "
          "replication timeout" % (pid, samples))
    h.chaos_result("stall-sink", "acks held %ds (throttled), "
                   "wal_sender_timeout %s" % (STALL_SECONDS, SENDER_TIMEOUT),
                   w.expected(), h.chaos_read_lines(out, "kind"), secs)


if __name__ == "__main__":
    h.main(test)
