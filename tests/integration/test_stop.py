# SPDX-License-Identifier: MIT
"""A stop that comes in the middle of a transaction.

walcastd tracks a transaction from its begin.  On SIGTERM inside one it
reads on to that transaction's commit (within shutdown_timeout), lets the
sinks acknowledge it, confirms and exits 0, so that a routine stop
repeats nothing at the next start.  When the commit does not come within
shutdown_timeout it stops there: it does not wait for an acknowledgement
that needs a commit it no longer reads (which made such a stop take the
whole shutdown_timeout twice over), confirms nothing of the transaction,
and reads it whole again at the next start.

In both cases walcastd is certainly inside one large transaction when the
signal comes: the walsender is frozen (SIGSTOP) part-way through it.

1. finished: SIGTERM, then the walsender goes on; walcastd exits 0 with
   every row written exactly once and the slot confirmed at the
   transaction's end.
2. cut short: shutdown_timeout 3 s and the walsender stays frozen;
   walcastd exits 0 promptly, confirms nothing up to the commit, leaves
   none of the transaction's lines in the file, and once started again
   writes the whole transaction.
3. undecodable: the transaction's last row cannot be read (text that is
   not UTF-8, from a SQL_ASCII database); reading on to the commit meets
   it, and walcastd exits 1 with the decode error, as it would have
   without the stop (it used to exit 0), confirming nothing of the
   transaction.
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SCHEMA = "town6-stop"
ROWS = 200000


def ids_of(lines):
    return [int(next(col["value"] for col in e["columns"]
                     if col["name"] == "id")) for e in lines]


def frozen_inside(c, slot, table, out, dbname="postgres", last="'x'"):
    """Runs one transaction of ROWS inserts into table (v of the last row
    is the SQL expression `last`) and freezes the walsender once walcastd
    has written some of it but not all.  Returns (walsender pid, lines
    written)."""
    c.sql('CREATE TABLE "%s".%s (id int PRIMARY KEY, v text)'
          % (SCHEMA, table), dbname=dbname)
    c.sql('INSERT INTO "%s".%s SELECT g, CASE WHEN g < %d THEN '
          'repeat(\'x\', 100) ELSE %s END FROM generate_series(1, %d) g'
          % (SCHEMA, table, ROWS, last, ROWS), dbname=dbname)
    cnt = h.LineCounter(out)
    h.wait_until(lambda: cnt() > 0, timeout=60,
                 what="the first changes of the transaction")
    walsender = int(c.slot(slot)["active_pid"])
    os.kill(walsender, signal.SIGSTOP)
    # what was already on its way arrives; then nothing more
    last = -1
    while cnt() != last:
        last = cnt.n
        time.sleep(1.0)
    h.log("walsender %d frozen with %d of %d changes written"
          % (walsender, last, ROWS))
    check(last < ROWS, "the whole transaction (%d changes) was read before "
          "the walsender was frozen: nothing left to test" % last)
    return walsender, last


def case_finished(c):
    slot, out = "stop_finish", os.path.join(c.tmp, "finish.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "finish.yaml"), c.dsn(), slot,
                         out, extra="shutdown_timeout: 120s\n")
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-finish")
    walsender = None
    try:
        walsender, _ = frozen_inside(c, slot, "f", out)
        t0 = time.monotonic()
        d.send(signal.SIGTERM)
        time.sleep(0.5)
        os.kill(walsender, signal.SIGCONT)
        walsender = None
        rc = d.wait(timeout=150)
        h.log("stopped in %.1f s, exit %d" % (time.monotonic() - t0, rc))
        check(rc == 0, "walcastd exited %d on SIGTERM\n%s"
              % (rc, d.describe()))
        err = d.stderr()
        check("to its commit before stopping" in err,
              "no word of reading on to the commit\n" + d.describe())
        check("without the commit of transaction" not in err,
              "stopped inside the transaction all the same\n"
              + d.describe())
        lines = h.read_jsonl(out)
        check(ids_of(lines) == list(range(1, ROWS + 1)),
              "%d lines, not ids 1..%d once each in order"
              % (len(lines), ROWS))
        end = h.lsn_int(lines[-1]["end_lsn"])
        conf = h.lsn_int(c.slot(slot)["confirmed_flush_lsn"])
        check(conf >= end, "confirmed_flush_lsn %s, short of the end %s of "
              "the transaction walcastd finished: it would be sent again"
              % (h.lsn_str(conf), h.lsn_str(end)))
    finally:
        if walsender:
            os.kill(walsender, signal.SIGCONT)
        d.kill()
        c.sql("SELECT pg_drop_replication_slot('%s')" % slot, check=False)


def case_cut_short(c):
    slot, out = "stop_cut", os.path.join(c.tmp, "cut.jsonl")
    timeout_s = 3
    cfg = h.write_config(os.path.join(c.tmp, "cut.yaml"), c.dsn(), slot, out,
                         extra="shutdown_timeout: %ds\n" % timeout_s)
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-cut1")
    walsender = None
    try:
        walsender, first = frozen_inside(c, slot, "c", out)
        commit = h.lsn_int(h.read_jsonl(out, True)[0]["commit_lsn"])
        t0 = time.monotonic()
        d.stop(signal.SIGTERM, timeout=60)
        took = time.monotonic() - t0
        os.kill(walsender, signal.SIGCONT)
        walsender = None
        h.log("stopped in %.1f s" % took)
        # shutdown_timeout reading, then the stream's end (up to 5 s
        # against a frozen server); no second wait for acknowledgements
        check(took < timeout_s + 5 + 3,
              "walcastd took %.1f s to stop with shutdown_timeout %d s\n%s"
              % (took, timeout_s, d.describe()))
        err = d.stderr()
        check("without the commit of transaction" in err,
              "no word of the unfinished transaction\n" + d.describe())
        check("not acknowledged within shutdown_timeout" not in err,
              "warned of unacknowledged transactions\n" + d.describe())
        # Confirmed may have followed the walsender's keepalives into the
        # transaction's WAL while the server decoded it (every transaction
        # that commits after the confirmed position is sent again), but
        # not up to its commit.
        conf = h.lsn_int(c.slot(slot)["confirmed_flush_lsn"])
        check(conf <= commit, "confirmed_flush_lsn %s is past %s, the "
              "commit of the transaction walcastd did not finish"
              % (h.lsn_str(conf), h.lsn_str(commit)))
        # the file sink cut the unfinished transaction's lines from the
        # file (docs/file-format.md): it comes again whole
        check(h.count_lines(out) == 0, "%d lines of the unfinished "
              "transaction stayed in the file" % h.count_lines(out))

        first = h.count_lines(out)
        d = h.start_walcastd(cfg, c.tmp, name="walcastd-cut2")
        cnt = h.LineCounter(out)
        h.wait_until(lambda: cnt() >= first + ROWS, timeout=180,
                     what=lambda: "the transaction again (%d of %d lines)"
                     % (cnt.n - first, ROWS))
        d.stop()
        check(ids_of(h.read_jsonl(out)[first:]) == list(range(1, ROWS + 1)),
              "after the restart: not ids 1..%d once each in order" % ROWS)
    finally:
        if walsender:
            os.kill(walsender, signal.SIGCONT)
        d.kill()


def case_undecodable(c):
    db = "ascii_db"
    c.sql("CREATE DATABASE %s ENCODING 'SQL_ASCII' LC_COLLATE 'C' "
          "LC_CTYPE 'C' TEMPLATE template0" % db)
    c.sql('CREATE SCHEMA "%s"' % SCHEMA, dbname=db)
    slot, out = "stop_bad", os.path.join(c.tmp, "bad.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "bad.yaml"), c.dsn(dbname=db),
                         slot, out, extra="shutdown_timeout: 120s\n")
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-bad")
    walsender = None
    try:
        walsender, _ = frozen_inside(c, slot, "b", out, dbname=db,
                                     last="E'not UTF-8: \\xff'")
        commit = h.lsn_int(h.read_jsonl(out, True)[0]["commit_lsn"])
        d.send(signal.SIGTERM)
        time.sleep(0.5)
        os.kill(walsender, signal.SIGCONT)
        walsender = None
        rc = d.wait(timeout=150)
        err = d.stderr()
        check(rc == 1, "walcastd exited %d, not 1, after a message that "
              "does not decode\n%s" % (rc, d.describe()))
        check("to its commit before stopping" in err,
              "no word of reading on to the commit\n" + d.describe())
        check("could not decode wal2json message at" in err and
              "invalid UTF-8" in err and
              "<3>stopping before that message" in err and
              "without the commit of transaction" not in err,
              "the decode error is not told (or told with more)\n"
              + d.describe())
        at = h.undecodable_at(err)
        conf = h.lsn_int(c.slot(slot)["confirmed_flush_lsn"])
        check(conf <= commit, "confirmed_flush_lsn %s is past %s, the commit "
              "of the transaction that does not decode"
              % (h.lsn_str(conf), h.lsn_str(commit)))
        # never skipped: the next start stops at the same message
        h.check_stops_again(cfg, c.tmp, at, "walcastd-bad2", timeout=150)
    finally:
        if walsender:
            os.kill(walsender, signal.SIGCONT)
        d.kill()
        c.sql("SELECT pg_drop_replication_slot('%s')" % slot, dbname=db,
              check=False)


def test():
    c = h.Cluster()
    c.sql('CREATE SCHEMA "%s"' % SCHEMA)
    cases = h.Cases()
    cases.run("finished: read on to the commit, nothing repeated",
              case_finished, c)
    cases.run("cut short by shutdown_timeout: prompt, read again whole",
              case_cut_short, c)
    cases.run("undecodable: reading on to the commit meets a bad message, "
              "exit 1", case_undecodable, c)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
