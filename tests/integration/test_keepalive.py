# SPDX-License-Identifier: MIT
"""TCP keepalive defaults on the replication connection.

A DSN that sets no keepalives gets keepalives=1, keepalives_idle=30,
keepalives_interval=10, keepalives_count=3 (and tcp_user_timeout 60 s):
the kernel's keepalive timer runs on walcastd's socket, as ss(8) shows.
What the DSN sets wins: keepalives_idle=7 shows a 7 s timer, keepalives=0
none.
"""

import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402


def timers(c, pid):
    """The ss timer fields of pid's connections to the cluster."""
    r = h.run(["ss", "-tnop", "state", "established",
               "( dport = :%d )" % c.port])
    return [l for l in r.stdout.splitlines() if "pid=%d," % pid in l]


def case(c, name, dsn, want):
    out = os.path.join(c.tmp, name + ".jsonl")
    cfg = h.write_config(os.path.join(c.tmp, name + ".yaml"), dsn, name, out)
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-" + name)
    # a status update in flight shows its retransmission timer instead:
    # look a few times
    for _ in range(20):
        lines = timers(c, d.pid)
        got = parse(lines)
        if lines and all(want(g) for g in got):
            break
        time.sleep(0.1)
    d.stop()
    check(lines, "%s: no connection of walcastd (pid %d) in ss's output"
          % (name, d.pid))
    check(all(want(g) for g in got), "%s: keepalive timers %r\n%s"
          % (name, got, "\n".join(lines)))
    h.log("%s: keepalive timers %r" % (name, got))


def parse(lines):
    got = []
    for l in lines:
        # seconds left until the next probe; None: no keepalive timer
        # (ss prints "29sec", and "6.952ms" for 6.952 s)
        m = re.search(r"timer:\(keepalive,(?:(\d+)min)?([\d.]+)(sec|ms)", l)
        got.append(None if not m else
                   int(m.group(1) or 0) * 60 + float(m.group(2)) /
                   (1000 if m.group(3) == "ms" and "." not in m.group(2)
                    else 1))
    return got


def test():
    if not shutil.which("ss"):
        h.log("ss(8) is not installed: skipped")
        return 0
    c = h.Cluster()
    case(c, "dflt", c.dsn(), lambda s: s is not None and 20 <= s <= 30)
    case(c, "idle7", c.dsn() + " keepalives_idle=7",
         lambda s: s is not None and 3 <= s <= 7)
    case(c, "off", c.dsn() + " keepalives=0", lambda s: s is None)
    case(c, "uri", "postgresql://postgres@127.0.0.1:%d/postgres" % c.port,
         lambda s: s is not None and 20 <= s <= 30)


if __name__ == "__main__":
    h.main(test)
