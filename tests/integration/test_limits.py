# SPDX-License-Identifier: MIT
"""limits.max_in_flight_*: reading pauses while the sinks hold too much.

A sink (tests/plugins/holdacks.c) takes every change but acknowledges
nothing until the test creates its "release" file.  With a limit of 50
changes (then of 4kB of JSON), walcastd stops reading once the committed,
unacknowledged transactions reach it: the sink has seen no more than the
limit, /metrics says walcast_paused 1 and walcast_in_flight_changes at the
limit.  Paused for longer than the server's wal_sender_timeout (5 s here),
the connection stays up (same walsender, no timeout in the server log),
because status messages keep going out.  Once released, everything is
delivered and confirmed.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, fail  # noqa: E402

SCHEMA = "town6-limits"
TXNS, PER = 40, 10
SENDER_TIMEOUT_S = 5


def count(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except FileNotFoundError:
        return 0


def walsender_pid(c, slot):
    s = c.slot(slot)
    return s["active_pid"] if s else None


def run_case(c, name, limits, max_seen):
    so = os.environ.get("WC_HOLDACKS_SO")
    if not so:
        fail("WC_HOLDACKS_SO is not set (tests/plugins not built)")
    release = os.path.join(c.tmp, name + ".release")
    counted = os.path.join(c.tmp, name + ".count")
    port = h.free_port()
    slot = name + "_slot"
    cfg = h.write_config(
        os.path.join(c.tmp, name + ".yaml"), c.dsn(), slot, None,
        extra="limits:\n%s"
              "sinks:\n  - plugin:\n      path: %s\n      config:\n"
              "        release: %s\n        count: %s\n"
              "metrics:\n  listen: \"127.0.0.1:%d\"\n"
              % ("".join("  %s: %s\n" % kv for kv in limits.items()),
                 h.yq(so), h.yq(release), h.yq(counted), port))
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-" + name)
    try:
        pid0 = walsender_pid(c, slot)
        c.sql("".join(
            'INSERT INTO "%s".t (v) SELECT repeat(\'x\', 100) FROM '
            'generate_series(1, %d);\n' % (SCHEMA, PER)
            for _ in range(TXNS)))
        c.wait_flushed()
        h.wait_until(lambda: h.metrics(port).get("walcast_paused") == 1,
                     timeout=20, what=lambda: "walcast_paused 1 (%r)"
                     % h.metrics(port))
        time.sleep(SENDER_TIMEOUT_S + 3)  # past wal_sender_timeout
        m = h.metrics(port)
        seen = count(counted)
        h.log("%s: paused with %d of %d changes taken, in flight %d "
              "changes / %d bytes" % (name, seen, TXNS * PER,
                                      m["walcast_in_flight_changes"],
                                      m["walcast_in_flight_bytes"]))
        check(0 < seen <= max_seen,
              "the sink took %d changes, expected 1 to %d" % (seen, max_seen))
        check(m["walcast_paused"] == 1 and
              m["walcast_in_flight_changes"] == seen,
              "metrics while paused: %r (sink took %d)" % (m, seen))
        check(d.poll() is None, "walcastd exited\n" + d.describe())
        check(walsender_pid(c, slot) == pid0,
              "the walsender changed (%s -> %s): the connection was lost "
              "while paused" % (pid0, walsender_pid(c, slot)))
        with open(c.logfile, errors="replace") as f:
            log = f.read()
        check("replication timeout" not in log,
              "the server timed the connection out:\n" + c.log_tail())

        open(release, "w").close()
        h.wait_until(lambda: count(counted) == TXNS * PER, timeout=30,
                     what=lambda: "all %d changes taken (%d)"
                     % (TXNS * PER, count(counted)))
        target = h.lsn_int(c.current_lsn())
        h.wait_until(lambda: h.lsn_int(c.slot(slot)["confirmed_flush_lsn"])
                     >= target, timeout=30, what="everything confirmed")
        m = h.metrics(port)
        check(m["walcast_paused"] == 0 and m["walcast_in_flight_changes"]
              == 0, "metrics after the release: %r" % m)
        d.stop()
    finally:
        d.kill()
    c.sql("SELECT pg_drop_replication_slot('%s')" % slot)


def test():
    c = h.Cluster(conf={"wal_sender_timeout": "%ds" % SENDER_TIMEOUT_S})
    c.sql('CREATE SCHEMA "%s"; CREATE TABLE "%s".t (id serial PRIMARY KEY, '
          'v text)' % (SCHEMA, SCHEMA))
    cases = h.Cases()
    cases.run("max_in_flight_changes", run_case, c, "changes",
              {"max_in_flight_changes": 50}, 50)
    # a change is ~300 bytes of JSON: 4kB is reached within 2 transactions
    cases.run("max_in_flight_bytes", run_case, c, "bytes",
              {"max_in_flight_bytes": "4kB"}, 2 * PER)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
