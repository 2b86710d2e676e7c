# SPDX-License-Identifier: MIT
"""An idle walcastd sleeps in poll().

Regression test for a busy loop: without systemd's watchdog, walcastd took
a deadline in the past as its poll() timeout and spun a whole core while
the database was idle (02959c9).  Checks, with no NOTIFY_SOCKET and no
WATCHDOG_USEC, that over a few idle seconds the daemon's CPU time (user +
system, from /proc/PID/stat) stays a small fraction of the wall time, and
that a change written afterwards still arrives at once.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SCHEMA = "town6-idle"
IDLE_SECONDS = 3.0
# an idle daemon wakes for a status message a second; the busy loop took
# 0.9 s or more of every second
MAX_CPU_SHARE = 0.10


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3): utime and stime are fields 14, 15
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def test():
    c = h.Cluster()
    c.sql('CREATE SCHEMA "%s"; CREATE TABLE "%s".t (id int PRIMARY KEY)'
          % (SCHEMA, SCHEMA))
    out = os.path.join(c.tmp, "idle.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "idle.yaml"), c.dsn(),
                         "idle_slot", out)
    env_watchdog = [k for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC")
                    if k in os.environ]
    for k in env_watchdog:
        del os.environ[k]
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-idle")
    try:
        time.sleep(0.5)  # past the start-up work
        cpu0, t0 = cpu_seconds(d.pid), time.monotonic()
        time.sleep(IDLE_SECONDS)
        cpu1, t1 = cpu_seconds(d.pid), time.monotonic()
        share = (cpu1 - cpu0) / (t1 - t0)
        h.log("idle: %.3f s of CPU in %.2f s (%.1f %%)"
              % (cpu1 - cpu0, t1 - t0, 100 * share))
        check(share <= MAX_CPU_SHARE,
              "walcastd used %.2f s of CPU in %.2f s of an idle stream "
              "(%.0f %%, at most %.0f %% expected): a busy loop?\n%s"
              % (cpu1 - cpu0, t1 - t0, 100 * share, 100 * MAX_CPU_SHARE,
                 d.describe()))

        # still awake: one change arrives promptly
        t = time.monotonic()
        c.sql('INSERT INTO "%s".t VALUES (1)' % SCHEMA)
        h.wait_until(lambda: any(e.get("table") == "t" for e in
                                 h.read_jsonl(out, complete_only=True)),
                     timeout=10, what="the inserted row in the output")
        h.log("a change after the idle period arrived in %.2f s"
              % (time.monotonic() - t))
        d.stop()
    finally:
        d.kill()
    return 0


if __name__ == "__main__":
    h.main(test)
