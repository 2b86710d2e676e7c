# SPDX-License-Identifier: MIT
"""Files that change under walcast, or are not what they should be.

- The file sink's file is deleted while walcastd writes to it, in the
  middle of a large transaction: every change of that transaction and
  after it ends up in a new file at the path (none lost, none only in the
  deleted inode), and what was delivered before the deletion is not
  written again.
- path: "-" with standard output appended to an existing file
  (`walcastd >> changes.jsonl`, systemd StandardOutput=append:): it used to
  exit 78; now what was in the file stays byte for byte, a last line
  without its newline is ended, and the changes follow.  A second run
  appends again.
- `walcastd --check -c FIFO` and `walcast check -c FIFO` return at once
  with exit 78 naming the path (they used to block forever); a SIGHUP
  while the configuration path is a FIFO is refused and walcastd goes on.
"""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SCHEMA = "town6-files"
BIG = 100000


def ids_of(events):
    return [int(e["columns"][0]["value"]) for e in events
            if e.get("table") == "t" and e.get("op") == "insert"]


def case_deleted_while_open(c):
    slot = "files_deleted"
    out = os.path.join(c.tmp, "deleted.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "deleted.yaml"), c.dsn(), slot,
                         out)
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-deleted")
    try:
        c.sql('INSERT INTO "%s".t VALUES (0)' % SCHEMA)
        h.wait_until(lambda: 0 in ids_of(h.read_jsonl(out, True)),
                     timeout=30, what="row 0 delivered")
        c.wait_flushed()
        target = h.lsn_int(c.current_lsn())
        h.wait_until(lambda: h.lsn_int(c.slot(slot)["confirmed_flush_lsn"])
                     >= target, timeout=30, what="row 0 confirmed")
        size0 = os.path.getsize(out)

        # one large transaction; the file is deleted while its lines are
        # being written
        c.sql('INSERT INTO "%s".t SELECT g FROM generate_series(1, %d) g'
              % (SCHEMA, BIG))
        big_end = h.lsn_int(c.current_lsn())
        deadline = time.monotonic() + 30
        while os.path.getsize(out) <= size0:
            check(time.monotonic() < deadline, "the large transaction "
                  "never reached the file\n" + d.describe())
            time.sleep(0.002)
        old = open(out, "rb")  # keeps the deleted inode readable
        os.unlink(out)
        size_at_unlink = os.fstat(old.fileno()).st_size
        confirmed_at_unlink = h.lsn_int(
            c.slot(slot)["confirmed_flush_lsn"])
        c.sql('INSERT INTO "%s".t SELECT g FROM generate_series(%d, %d) g'
              % (SCHEMA, BIG + 1, BIG + 10))
        want = set(range(1, BIG + 11))
        h.wait_until(lambda: want <= set(ids_of(h.read_jsonl(out, True))),
                     timeout=60,
                     what=lambda: "rows 1..%d in the new %s (%d there)"
                     % (BIG + 10, out, len(set(ids_of(h.read_jsonl(
                         out, True))) & want)))
        d.stop()
    finally:
        d.kill()
    old_data = old.read()
    old.close()
    old_ids = set(ids_of(h.loads(line) for line in
                         old_data.decode().split("\n")[:-1] if line))
    got = ids_of(h.read_jsonl(out))
    dups = len(got) - len(set(got))
    h.log("deleted while open: %d of %d bytes in the file when it was "
          "deleted (%d rows of the large transaction by the end), %d lines "
          "in the new file, %d duplicates; slot confirmed %s at the "
          "deletion, the large transaction ends at %s"
          % (size_at_unlink, len(old_data), len(old_ids - {0}), len(got),
             dups, h.lsn_str(confirmed_at_unlink), h.lsn_str(big_end)))
    check(0 not in got, "row 0, delivered before the deletion, was written "
          "again to the new file")
    check(set(got) == want, "the new file lacks rows: %r"
          % sorted(want - set(got))[:20])
    check(dups == 0, "%d duplicate lines in the new file" % dups)
    # the deletion came in the middle of the large transaction, before it
    # was confirmed: the case this test is about
    check(confirmed_at_unlink < big_end and old_ids - {0},
          "the file was not deleted in the middle of the large transaction "
          "(confirmed %s, transaction end %s, %d of its rows in the old "
          "file): the test did not test" % (
              h.lsn_str(confirmed_at_unlink), h.lsn_str(big_end),
              len(old_ids - {0})))


def case_stdout_append(c):
    slot = "files_stdout"
    out = os.path.join(c.tmp, "appended.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "stdout.yaml"), c.dsn(), slot,
                         "-")
    previous = b"not walcast's line\n{\"op\":\"insert\",\"cut"
    with open(out, "wb") as f:
        f.write(previous)

    def run(name, first):
        err = open(os.path.join(c.tmp, name + ".stderr"), "wb")
        # `walcastd -c CFG >> out`: a write-only, appending descriptor
        with open(out, "ab") as stdout:
            p = subprocess.Popen([h.binary("walcastd"), "-c", cfg],
                                 stdin=subprocess.DEVNULL, stdout=stdout,
                                 stderr=err)
        try:
            def stderr():
                with open(err.name, "rb") as f:
                    return f.read().decode(errors="replace")
            h.wait_until(lambda: "streaming" in stderr() or
                         p.poll() is not None, timeout=30,
                         what="walcastd streaming")
            check(p.poll() is None, "walcastd exited %s with its standard "
                  "output appended to a file:\n%s" % (p.poll(), stderr()))
            c.sql('INSERT INTO "%s".t SELECT g FROM generate_series(%d, %d) '
                  'g' % (SCHEMA, first, first + 2))

            def delivered():
                with open(out, "rb") as f:
                    return f.read().count(b'"value":%d}' % (first + 2)) > 0
            h.wait_until(delivered, timeout=30,
                         what="rows %d.. appended to %s" % (first, out))
            p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=30)
            check(rc == 0, "walcastd exited %d:\n%s" % (rc, stderr()))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            err.close()

    run("walcastd-stdout-1", 200010)
    with open(out, "rb") as f:
        data = f.read()
    check(data.startswith(previous + b"\n"), "what was in the file before "
          "is not kept as it was, ended by a newline: %r" % data[:200])
    rest = data[len(previous) + 1:].decode()
    lines = rest.split("\n")
    check(lines[-1] == "", "the file does not end with a newline")
    got = ids_of(h.loads(line) for line in lines[:-1])
    check(got == [200010, 200011, 200012], "appended rows %r" % got)

    run("walcastd-stdout-2", 200020)
    with open(out, "rb") as f:
        data2 = f.read()
    check(data2.startswith(data), "the second run changed what the first "
          "left")
    lines = data2[len(data):].decode().split("\n")
    check(lines[-1] == "" and "" not in lines[:-1],
          "the second run's lines: %r" % lines[:5])
    got = ids_of(h.loads(line) for line in lines[:-1])
    check(got == [200020, 200021, 200022], "rows of the second run %r"
          % got)


def case_fifo_config(c):
    fifo = os.path.join(c.tmp, "fifo.yaml")
    os.mkfifo(fifo)
    for argv, what in (([h.binary("walcastd"), "-c", fifo, "--check"],
                        "walcastd --check"),
                       ([h.binary("walcast"), "check", "-c", fifo],
                        "walcast check"),
                       ([h.binary("walcastd"), "-c", fifo], "walcastd")):
        t0 = time.monotonic()
        r = h.run(argv, timeout=10)
        took = time.monotonic() - t0
        check(r.returncode == h.EX_CONFIG and fifo in r.stderr and
              "FIFO" in r.stderr and took < 5,
              "%s -c FIFO: exit %d after %.1fs:\n%s"
              % (what, r.returncode, took, r.stderr))
        h.log("%s: %s" % (what, r.stderr.strip().splitlines()[-1]))

    # a reload while the path is a FIFO: refused, walcastd goes on
    slot = "files_fifo"
    path = os.path.join(c.tmp, "reload.yaml")
    out = os.path.join(c.tmp, "reload.jsonl")
    h.write_config(path, c.dsn(), slot, out)
    d = h.start_walcastd(path, c.tmp, name="walcastd-fifo-reload")
    try:
        os.rename(path, path + ".saved")
        os.mkfifo(path)
        d.send(signal.SIGHUP)
        h.wait_until(lambda: "FIFO" in d.stderr() or d.poll() is not None,
                     timeout=10, what="the reload refused")
        check(d.poll() is None and path in d.stderr(),
              "walcastd after a SIGHUP with a FIFO as configuration:\n"
              + d.describe())
        c.sql('INSERT INTO "%s".t VALUES (200030)' % SCHEMA)
        h.wait_until(lambda: 200030 in ids_of(h.read_jsonl(out, True)),
                     timeout=30, what="a row delivered after the refusal")
        d.stop(timeout=10)
    finally:
        d.kill()


def test():
    c = h.Cluster()
    c.sql('CREATE SCHEMA "%s"; CREATE TABLE "%s".t (id int PRIMARY KEY)'
          % (SCHEMA, SCHEMA))
    cases = h.Cases()
    for name, fn in [("file deleted while open", case_deleted_while_open),
                     ("stdout appended to a file", case_stdout_append),
                     ("configuration is a FIFO", case_fifo_config)]:
        cases.run(name, fn, c)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
