# SPDX-License-Identifier: MIT
"""Heartbeats: an idle database with a busy neighbour does not hold WAL.

- walcastd reads database "app", where nothing is written; a neighbouring
  database ("busy") and a schema of "app" that walcast's filter leaves out
  write some 100 MB of WAL.  With heartbeat.interval 1s the slot's
  confirmed position follows the server and the WAL it retains (from
  restart_lsn to the current position) stays bounded; the heartbeat
  messages themselves are not passed to the sink;
- heartbeat.deliver: true passes them on (prefix walcast.heartbeat);
- a failing action_query is logged once (not once per beat) and walcastd
  keeps streaming.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SCHEMA = "org-quiet"
NOISY = "org-noisy"  # in app, filtered out
WAL_MB = 96
# a WAL segment is 16 MB; a checkpoint every few MB keeps restart_lsn
# candidates coming (running_xacts records); what is retained must stay
# far below what was written
MAX_RETAINED_MB = 40


def mb(n):
    return n / (1024.0 * 1024.0)


def write_wal(c, megabytes):
    """Writes about `megabytes` of WAL in the busy database and the
    filtered-out schema, with a checkpoint now and then."""
    start = h.lsn_int(c.current_lsn())
    while h.lsn_int(c.current_lsn()) - start < megabytes * 1024 * 1024:
        c.sql("INSERT INTO noise (v) SELECT repeat('x', 1000) FROM "
              "generate_series(1, 4000)", dbname="busy")
        c.sql('INSERT INTO "%s".n (v) SELECT repeat(\'y\', 500) FROM '
              'generate_series(1, 1000); CHECKPOINT;' % NOISY, dbname="app")
    return h.lsn_int(c.current_lsn()) - start


def retained(c, slot):
    return int(c.sql_value(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint"
        " FROM pg_replication_slots WHERE slot_name = '%s'" % slot))


def config(c, name, slot, extra):
    path = os.path.join(c.tmp, name + ".yaml")
    out = os.path.join(c.tmp, name + ".jsonl")
    h.write_config(path, c.dsn(dbname="app"), slot, out,
                   filt={"schemas": {"exclude": [NOISY]}}, extra=extra)
    return path, out


def case_bounded(c):
    cfg, out = config(c, "hb", "hb_slot",
                      "heartbeat:\n  interval: 1s\n")
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-heartbeat")
    try:
        time.sleep(1.5)
        before = h.lsn_int(c.slot("hb_slot")["confirmed_flush_lsn"])
        written = write_wal(c, WAL_MB)
        c.sql("CHECKPOINT")
        target = h.lsn_int(c.current_lsn())

        def caught_up():
            s = c.slot("hb_slot")
            return h.lsn_int(s["confirmed_flush_lsn"]) >= target
        h.wait_until(caught_up, timeout=30, what=lambda: "confirmed %s to "
                     "reach %s" % (c.slot("hb_slot")["confirmed_flush_lsn"],
                                   h.lsn_str(target)))
        c.sql("CHECKPOINT")
        time.sleep(2.5)  # a beat, a status, a checkpoint's running_xacts
        c.sql("CHECKPOINT")

        def small():
            return retained(c, "hb_slot") <= MAX_RETAINED_MB * 1024 * 1024
        h.wait_until(small, timeout=20, what=lambda: "retained WAL %.1f MB "
                     "<= %d MB" % (mb(retained(c, "hb_slot")),
                                   MAX_RETAINED_MB))
        h.log("wrote %.1f MB of WAL elsewhere; confirmed %s -> %s; the slot "
              "retains %.1f MB" % (mb(written), h.lsn_str(before),
                                   c.slot("hb_slot")["confirmed_flush_lsn"],
                                   mb(retained(c, "hb_slot"))))
        beats = int(c.sql_value(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name "
            "= 'walcast-heartbeat'"))
        check(beats == 1, "%d heartbeat connections, expected one" % beats)
        d.stop()
    finally:
        d.kill()
    got = h.read_jsonl(out)
    check(got == [], "the sink got %d lines, expected none (heartbeats are "
          "not passed on, the neighbours are filtered): %r"
          % (len(got), got[:3]))


def case_deliver(c):
    cfg, out = config(c, "hbd", "hbd_slot",
                      "heartbeat:\n  interval: 1s\n  deliver: true\n")
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-heartbeat-deliver")
    try:
        def messages():
            return [e for e in h.read_jsonl(out, complete_only=True)
                    if e.get("op") == "message"]
        h.wait_until(lambda: len(messages()) >= 2, timeout=20,
                     what="two heartbeat messages in the output")
        m = messages()[0]
        check(m.get("prefix") == "walcast.heartbeat" and
              m.get("transactional") is False,
              "heartbeat message %r" % m)
        d.stop()
    finally:
        d.kill()


def case_failing_query(c):
    c.sql('CREATE TABLE "%s".t (id int PRIMARY KEY)' % SCHEMA, dbname="app")
    cfg, out = config(c, "hbf", "hbf_slot",
                      "heartbeat:\n  interval: 1s\n"
                      "  action_query: \"SELECT no_such_function()\"\n")
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-heartbeat-failing")
    try:
        h.wait_until(lambda: "no_such_function" in d.stderr(), timeout=20,
                     what="the heartbeat error")
        time.sleep(3.5)  # three more beats
        c.sql('INSERT INTO "%s".t VALUES (1)' % SCHEMA, dbname="app")
        h.wait_until(lambda: any(e.get("table") == "t" for e in
                                 h.read_jsonl(out, complete_only=True)),
                     timeout=20, what="the row after the failing beats")
        err = d.stderr()
        n = err.count("no_such_function")
        check(n == 1, "the failing heartbeat was logged %d times:\n%s"
              % (n, err))
        check("heartbeat" in err and "<4>" in err,
              "no warning about the heartbeat:\n" + err)
        d.stop()
    finally:
        d.kill()


def test():
    c = h.Cluster(conf={"max_wal_size": "64MB", "min_wal_size": "32MB"})
    c.sql("CREATE DATABASE app")
    c.sql("CREATE DATABASE busy")
    c.sql("CREATE TABLE noise (id serial PRIMARY KEY, v text)",
          dbname="busy")
    c.sql('CREATE SCHEMA "%s"; CREATE SCHEMA "%s"; '
          'CREATE TABLE "%s".n (id serial PRIMARY KEY, v text)'
          % (SCHEMA, NOISY, NOISY), dbname="app")
    cases = h.Cases()
    cases.run("idle database, busy neighbours: WAL bounded", case_bounded, c)
    cases.run("heartbeat.deliver passes them on", case_deliver, c)
    cases.run("a failing action query is logged once", case_failing_query,
              c)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
