# SPDX-License-Identifier: MIT
"""The file sink keeps its position (docs/file-format.md, "The file").

- rotation: the file is renamed and walcastd gets SIGHUP (logrotate);
  then walcastd is killed before it told the server anything (a status
  interval of an hour), so the server replays every transaction of both
  files.  The old file keeps its changes, the new one gets only the later
  ones: each change once over the two, from the position the state
  directory kept across the rotation.
- a file without a state directory is cut back to its last whole
  transaction at the start: the lines of one that did not commit, left
  at its end, go, and come again whole.
- a file whose position is beyond the server's WAL (another server's)
  stops walcastd with exit 69 rather than skip this server's changes.
"""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SCHEMA = "town6-rot"


def ids(path):
    return [int(e["columns"][0]["value"]) for e in h.read_jsonl(path, True)
            if e.get("op") == "insert"]


def insert(c, *keys):
    for k in keys:
        c.sql('INSERT INTO "%s".t VALUES (%d)' % (SCHEMA, k))


def case_rotation(c):
    state = os.path.join(c.tmp, "state")
    os.mkdir(state)
    out = os.path.join(c.tmp, "rot.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "rot.yaml"), c.dsn(), "rot",
                         out, status_interval="1h",
                         extra="state_dir: %s\n" % h.yq(state))
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-rot")
    insert(c, 1, 2, 3)
    h.wait_until(lambda: ids(out) == [1, 2, 3], timeout=30,
                 what="rows 1-3 in the file")
    os.rename(out, out + ".1")
    d.send(signal.SIGHUP)
    h.wait_until(lambda: "reloaded" in d.stderr() or d.poll() is not None,
                 timeout=30, what="the reload")
    insert(c, 4)
    h.wait_until(lambda: ids(out) == [4], timeout=30,
                 what="row 4 in the new file")
    confirmed = h.lsn_int(c.slot("rot")["confirmed_flush_lsn"])
    d.kill()
    positions = [f for f in os.listdir(state) if f.endswith(".position")]
    check(len(positions) == 1, "no position file in the state directory: %r"
          % os.listdir(state))
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-rot-2")
    insert(c, 5)
    h.wait_until(lambda: 5 in ids(out), timeout=30,
                 what="row 5 in the new file")
    d.stop()
    first = h.read_jsonl(out + ".1", True)
    check(any(h.lsn_int(e["end_lsn"]) > confirmed for e in first),
          "the server had confirmed everything before the kill: the case "
          "shows nothing")
    check(ids(out + ".1") == [1, 2, 3] and ids(out) == [4, 5],
          "after a rotation and kill -9: %r in the old file, %r in the new "
          "one (each change once expected)" % (ids(out + ".1"), ids(out)))


def case_cut_back(c):
    out = os.path.join(c.tmp, "cut.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "cut.yaml"), c.dsn(), "cut",
                         out, status_interval="1h")
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-cut")
    insert(c, 10, 11)
    h.wait_until(lambda: ids(out) == [10, 11], timeout=30,
                 what="rows 10 and 11")
    d.stop()
    whole = open(out, "rb").read()
    check(whole.endswith(b',"last":true}\n'),
          "the last line does not end the transaction: %r" % whole[-200:])
    # the first lines of a transaction that did not commit, and half a
    # line: as a crash leaves them
    lines = whole.split(b"\n")
    partial = (lines[-2].replace(b',"last":true}', b"}") + b"\n" +
               lines[-2][:40])
    with open(out, "ab") as f:
        f.write(partial)
    insert(c, 12)
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-cut-2")
    h.wait_until(lambda: 12 in ids(out), timeout=30, what="row 12")
    d.stop()
    check(ids(out) == [10, 11, 12], "after the start: %r" % ids(out))
    check(open(out, "rb").read().startswith(whole),
          "the whole transactions before the cut changed")


def case_foreign_file(c):
    """A file whose last whole transaction ends beyond the server's WAL
    holds another server's changes: walcastd would skip this one's, so
    it stops (exit 69) and says which sink and what to do."""
    out = os.path.join(c.tmp, "foreign.jsonl")
    with open(out, "w") as f:
        f.write('{"op":"insert","schema":"s","table":"t","lsn":"FF/10",'
                '"xid":7,"commit_lsn":"FF/20","end_lsn":"FF/50",'
                '"commit_time":"2026-11-25T13:48:23.648945Z",'
                '"columns":[],"pk":[],"last":true}\n')
    cfg = h.write_config(os.path.join(c.tmp, "foreign.yaml"), c.dsn(),
                         "foreign", out)
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-foreign", ready=False)
    rc = d.wait(timeout=30)
    err = d.stderr()
    check(rc == 69 and "holds transactions up to FF/50, beyond the "
          "server's WAL" in err and out in err,
          "walcastd with another server's file: exit %s\n%s"
          % (rc, d.describe()))


def test():
    c = h.Cluster()
    c.sql('CREATE SCHEMA "%s"; CREATE TABLE "%s".t (id int PRIMARY KEY)'
          % (SCHEMA, SCHEMA))
    cases = h.Cases()
    for name, fn in [("rotation keeps the position", case_rotation),
                     ("cut back to the last whole transaction",
                      case_cut_back),
                     ("a file of another server", case_foreign_file)]:
        cases.run(name, fn, c)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
