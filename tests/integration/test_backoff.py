#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The replay backoff: 1 s, 2 s, 4 s ... by default; the hidden
WALCAST_BACKOFF_MIN_MS and WALCAST_BACKOFF_MAX_MS set it in milliseconds
(the tests use them so as not to wait 30 s between attempts).  A file
sink on /dev/full fails at every attempt; walcastd says how long it
waits before the first replay."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SCHEMA = "backoff"
# a whole line: it may be read while half written
REPLAY = re.compile(r"replaying from \S+ in (\d+) ms\n")


def failing_daemon(c, slot, env):
    """walcastd writing to /dev/full with env's backoff settings (None:
    unset); returns it once it has said it replays."""
    saved = {k: os.environ.pop(k, None)
             for k in ("WALCAST_BACKOFF_MIN_MS", "WALCAST_BACKOFF_MAX_MS")}
    os.environ.update({k: v for k, v in env.items() if v is not None})
    try:
        cfg = h.write_config(os.path.join(c.tmp, slot + ".yaml"), c.dsn(),
                             slot, "/dev/full",
                             filt={"schemas": {"include": [SCHEMA]}})
        d = h.start_walcastd(cfg, c.tmp, name="walcastd-" + slot)
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None)
            if v is not None:
                os.environ[k] = v
    c.sql('INSERT INTO "%s".t VALUES (DEFAULT)' % SCHEMA)
    h.wait_until(lambda: REPLAY.search(d.stderr()) or
                 d.poll() is not None, timeout=30,
                 what=lambda: "the first replay\n" + d.describe())
    return d


def first_wait(d):
    m = REPLAY.search(d.stderr())
    check(m, "no \"replaying from ... in N ms\"\n" + d.describe())
    return int(m.group(1))


def case_default(c):
    d = failing_daemon(c, "default_slot", {})
    try:
        ms = first_wait(d)
        check(800 <= ms <= 1200, "the first replay waits %d ms, expected "
              "1 s +-20 %%\n%s" % (ms, d.describe()))
    finally:
        d.stop()
    c.sql("SELECT pg_drop_replication_slot('default_slot')")


def case_environment(c):
    d = failing_daemon(c, "env_slot", {"WALCAST_BACKOFF_MIN_MS": "100",
                                       "WALCAST_BACKOFF_MAX_MS": "300"})
    try:
        ms = first_wait(d)
        check(80 <= ms <= 120, "the first replay waits %d ms, expected "
              "100 ms +-20 %%\n%s" % (ms, d.describe()))
        # 100, 200, 300, 300, ...: the sixth failure within seconds
        # (the default backoff would take 31 s)
        h.wait_until(lambda: "could not deliver again (6 times" in
                     d.stderr() or d.poll() is not None, timeout=10,
                     what="the sixth failed attempt\n" + d.describe())
        check(d.poll() is None, "walcastd exited\n" + d.describe())
    finally:
        d.stop()
    c.sql("SELECT pg_drop_replication_slot('env_slot')")


def test():
    c = h.Cluster()
    c.sql('CREATE SCHEMA "%s"; CREATE TABLE "%s".t (id serial PRIMARY KEY)'
          % (SCHEMA, SCHEMA))
    cases = h.Cases()
    cases.run("default: 1 s", case_default, c)
    cases.run("WALCAST_BACKOFF_MIN_MS and _MAX_MS", case_environment, c)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
