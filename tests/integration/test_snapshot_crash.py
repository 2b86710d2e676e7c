# SPDX-License-Identifier: MIT
"""The initial snapshot owed to a new slot survives a crash right after
the slot is created (docs/snapshots.md, "Restarts and crashes").

walcastd is stopped as kill -9 would stop it (WALCAST_TEST_CRASH, a
hidden test hook in cmd/common/stream.c) at the two points between the
slot's creation and the snapshot's first progress file:

- slot-created: the open created the slot; nothing else is written;
- slot-recorded: the state file records the slot too.

Started again, walcastd finds the slot existing and must still read every
included table: folding the file sink's output by key gives exactly the
tables' final content, while a writer changes them.  And the other way:
a slot that existed before walcastd's first start (`walcast slot create`)
is owed nothing, so no table is read.
"""

import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402
import test_snapshot as ts  # noqa: E402


def start_crashing(cfg, c, point, name):
    """walcastd with WALCAST_TEST_CRASH=point: it must die of SIGKILL."""
    os.environ["WALCAST_TEST_CRASH"] = point
    try:
        d = h.start_walcastd(cfg, c.tmp, name=name, ready=False)
    finally:
        del os.environ["WALCAST_TEST_CRASH"]
    rc = d.wait(timeout=60)
    check(rc == -signal.SIGKILL,
          "walcastd did not stop at %s: exit %s\n%s"
          % (point, rc, d.describe()))
    check("WALCAST_TEST_CRASH=%s" % point in d.stderr(),
          "walcastd stopped elsewhere than %s\n%s" % (point, d.describe()))
    return d


def setup(c, db):
    """A database with test_snapshot's tables and a config for it with
    snapshot.initial and a state directory: (slot, output, state directory,
    config path)."""
    slot = "snap_" + db
    c.sql("CREATE DATABASE " + db)
    ts.setup_tables(c, db)
    out = os.path.join(c.tmp, db + ".jsonl")
    state = os.path.join(c.tmp, db + "-state")
    os.mkdir(state)
    cfg = h.write_config(
        os.path.join(c.tmp, db + ".yaml"), c.dsn(dbname=db), slot, out,
        filt={"tables": {"exclude": ["skipped", "nopk"]}},
        extra=ts.snapshot_yaml() + "state_dir: %s\n" % h.yq(state))
    return slot, out, state, cfg


def crash_case(point):
    def case(c):
        db = "crash_" + point.replace("-", "_")
        slot, out, state, cfg = setup(c, db)
        start_crashing(cfg, c, point, db + "-crash")
        check(c.slot(slot) is not None,
              "the slot was not created before the crash")
        files = sorted(os.listdir(state))
        check("%s.snapshot" % slot not in files,
              "the progress file was written before the crash point: the "
              "case tests nothing: %r" % files)
        h.chaos_wait_slot_free(c, slot)
        # changes while walcastd is down and while it snapshots
        writer = ts.start_writer(c, db, ts.writer_script(
            random.Random(len(point)), 400), name=db)
        time.sleep(0.2)
        d = h.start_walcastd(cfg, c.tmp, name=db)
        try:
            # the outcome first: every row is there (without a snapshot,
            # the fold says which are missing once the stream is
            # confirmed)
            if "snapshot: reading" in d.stderr():
                ts.wait_done(c, d, slot, writer)
            else:
                check(writer.wait(timeout=120) == 0, "the writer failed")
                h.chaos_wait_confirmed(c, slot, c.wait_flushed(), procs=[d])
            ts.check_fold(c, db, out)
            check("owed since the start that created slot" in d.stderr(),
                  "the owed initial snapshot was not logged:\n" + d.stderr())
            files = sorted(os.listdir(state))
            check("%s.snapshot-owed" % slot not in files and
                  "%s.snapshot" % slot not in files,
                  "snapshot files left after the snapshot: %r" % files)
            d.stop()
        finally:
            d.kill()
            writer.kill()
    return case


def case_slot_existed(c):
    """A slot made by `walcast slot create` before walcastd's first start
    is owed nothing: no table is read, and nothing is left in the state
    directory."""
    db = "crash_existed"
    slot, out, state, cfg = setup(c, db)
    r = h.walcast("slot", "create", "-c", cfg)
    check(r.returncode == 0, "slot create: %s" % r.stderr)
    d = h.start_walcastd(cfg, c.tmp, name=db)
    try:
        c.sql("INSERT INTO snap.one VALUES (-1, 'after', 0)", dbname=db)
        target = c.wait_flushed()
        h.chaos_wait_confirmed(c, slot, target, procs=[d])
        lines = h.read_jsonl(out)
        check(any(e.get("op") == "insert" for e in lines),
              "the insert did not come through:\n" + d.stderr())
        check(not any(e.get("op") == "read" for e in lines) and
              "snapshot: reading" not in d.stderr(),
              "a slot that existed before was snapshotted:\n" + d.stderr())
        files = sorted(os.listdir(state))
        check("%s.snapshot-owed" % slot not in files,
              "the owed file stayed: %r" % files)
        d.stop()
    finally:
        d.kill()


def test():
    c = h.Cluster()
    cases = h.Cases()
    cases.run("killed once the slot is created: the snapshot is still owed",
              crash_case("slot-created"), c)
    cases.run("killed once the slot is recorded: the snapshot is still owed",
              crash_case("slot-recorded"), c)
    cases.run("a slot that existed before is owed no snapshot",
              case_slot_existed, c)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
