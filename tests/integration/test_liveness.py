# SPDX-License-Identifier: MIT
"""A server that goes silent is noticed.

The replication connection runs through a proxy that, at a given moment,
drops everything the server sends while passing on what walcastd sends
(a network path that loses packets one way; the TCP connection itself
stays up).  With wal_sender_timeout = 4s, walcastd must within a few
seconds report walcast_streaming 0 and /readyz 503, stop sending
WATCHDOG=1, give the connection up and try again; once the path works,
stream again, ping again, and have lost nothing.
"""

import os
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SENDER_TIMEOUT_S = 4


def readyz(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port,
                                    timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def ids(out):
    return sorted(int(r["columns"][0]["value"])
                  for r in h.read_jsonl(out, complete_only=True)
                  if r.get("op") == "insert")


def test():
    c = h.Cluster(conf={"wal_sender_timeout": "%ds" % SENDER_TIMEOUT_S})
    c.sql("CREATE TABLE live (id int PRIMARY KEY);")
    drop = {"on": False}
    proxy = h.PgProxy(c.port,
                      lambda msg: b"" if drop["on"] else msg)
    h._cleanups.append(proxy.close)
    out = os.path.join(c.tmp, "live.jsonl")
    port = h.free_port()
    cfg = h.write_config(os.path.join(c.tmp, "live.yaml"),
                         proxy.dsn() + " connect_timeout=2", "live", out,
                         extra="metrics:\n  listen: 127.0.0.1:%d\n" % port)
    n = h.Notify(os.path.join(c.tmp, "notify.sock"))
    d = n.start_walcastd(cfg, c.tmp)

    c.sql("INSERT INTO live VALUES (1), (2);")
    h.wait_until(lambda: ids(out) == [1, 2], timeout=20, what="rows 1, 2")
    h.wait_until(lambda: h.metrics(port).get("walcast_streaming") == 1,
                 timeout=10, what="walcast_streaming 1")
    check(readyz(port) == 200, "not ready while streaming")
    # quiet for longer than the receive timeout while all is well: the
    # keepalives it asks for keep it streaming
    time.sleep(SENDER_TIMEOUT_S * 1.5)
    check(h.metrics(port).get("walcast_streaming") == 1 and
          readyz(port) == 200 and "nothing heard" not in d.stderr(),
          "an idle but working connection was taken for a silent one\n"
          + d.describe())
    check(len(n.pings(time.monotonic() - 2)) >= 2,
          "no WATCHDOG=1 while idle and heard")

    # the path drops whatever the server sends
    drop["on"] = True
    t0 = time.monotonic()
    c.sql("INSERT INTO live VALUES (3), (4);")
    h.wait_until(lambda: h.metrics(port).get("walcast_streaming") == 0,
                 timeout=SENDER_TIMEOUT_S * 3,
                 what="walcast_streaming 0 with the server silent\n"
                 + d.describe())
    noticed = time.monotonic() - t0
    h.log("not streaming after %.1f s of silence" % noticed)
    check(noticed <= SENDER_TIMEOUT_S * 2,
          "took %.1f s to notice (wal_sender_timeout %d s)"
          % (noticed, SENDER_TIMEOUT_S))
    check(readyz(port) == 503, "/readyz ready with the server silent")
    h.wait_until(lambda: "nothing heard from" in d.stderr(),
                 timeout=SENDER_TIMEOUT_S * 2,
                 what="the receive timeout\n" + d.describe())
    # the path stays broken for a while: no pings meanwhile
    quiet_from = time.monotonic()
    time.sleep(4)
    late = n.pings(quiet_from)
    check(not late, "WATCHDOG=1 sent %d times with the server silent"
          % len(late))
    check(d.poll() is None, "walcastd exited\n" + d.describe())

    drop["on"] = False
    c.sql("INSERT INTO live VALUES (5);")
    h.wait_until(lambda: ids(out) == [1, 2, 3, 4, 5], timeout=60,
                 what="rows 3, 4, 5 after the path works again (got %r)\n%s"
                 % (ids(out), d.describe()))
    h.wait_until(lambda: h.metrics(port).get("walcast_streaming") == 1,
                 timeout=10, what="walcast_streaming 1 again")
    h.wait_until(lambda: readyz(port) == 200, timeout=10,
                 what="ready again")
    back = time.monotonic()
    h.wait_until(lambda: len(n.pings(back)) >= 2, timeout=10,
                 what="WATCHDOG=1 again")
    d.stop()
    check(ids(out) == [1, 2, 3, 4, 5], "rows after the stop: %r" % ids(out))


if __name__ == "__main__":
    h.main(test)
