# SPDX-License-Identifier: MIT
"""A stop in the middle of a transaction is prompt and loses nothing.

walcastd tracks a transaction from its begin.  On SIGTERM it stops reading
and waits up to shutdown_timeout for the sinks to acknowledge what is in
flight; the transaction it was reading will never see its commit from a
stream no longer read, so waiting for it only made every such stop take
the whole shutdown_timeout (and then warn about it).

Here walcastd reads one large transaction and the walsender is frozen
(SIGSTOP) part-way, so walcastd is certainly inside it when SIGTERM comes.
With shutdown_timeout at 60 s, walcastd must exit 0 within a few seconds,
say that it stopped inside a transaction, confirm nothing of it, and, once
started again, deliver the whole transaction.
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SCHEMA = "town6-stop"
SLOT = "stop_slot"
ROWS = 200000
SHUTDOWN_TIMEOUT_S = 60
# the stream's own end (CopyDone, up to 5 s) and start-up under sanitizers
MAX_STOP_S = 15


def test():
    c = h.Cluster()
    c.sql('CREATE SCHEMA "%s"; CREATE TABLE "%s".t (id int PRIMARY KEY, '
          'v text)' % (SCHEMA, SCHEMA))
    out = os.path.join(c.tmp, "out.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "stop.yaml"), c.dsn(), SLOT,
                         out, extra="shutdown_timeout: %ds\n"
                         % SHUTDOWN_TIMEOUT_S)
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-stop1")
    walsender = None
    try:
        c.sql('INSERT INTO "%s".t SELECT g, repeat(\'x\', 100) FROM '
              'generate_series(1, %d) g' % (SCHEMA, ROWS))
        cnt = h.LineCounter(out)
        h.wait_until(lambda: cnt() > 0, timeout=60,
                     what="the first changes of the transaction")
        walsender = int(c.slot(SLOT)["active_pid"])
        os.kill(walsender, signal.SIGSTOP)
        # what was in flight on the socket arrives; then nothing more
        last = -1
        while cnt() != last:
            last = cnt.n
            time.sleep(1.0)
        h.log("walsender %d frozen with %d of %d changes written"
              % (walsender, last, ROWS))
        check(last < ROWS, "the whole transaction (%d changes) was read "
              "before the walsender was frozen: nothing left to test"
              % last)

        t0 = time.monotonic()
        d.send(signal.SIGTERM)
        os.kill(walsender, signal.SIGCONT)
        walsender = None
        rc = d.wait(timeout=SHUTDOWN_TIMEOUT_S + 30)
        took = time.monotonic() - t0
        h.log("stopped in %.1f s, exit %d" % (took, rc))
        check(rc == 0, "walcastd exited %d on SIGTERM\n%s" % (rc,
                                                             d.describe()))
        check(took < MAX_STOP_S,
              "walcastd took %.1f s to stop inside a transaction "
              "(shutdown_timeout %d s): it waited for a commit it does not "
              "read\n%s" % (took, SHUTDOWN_TIMEOUT_S, d.describe()))
        err = d.stderr()
        check("stopping in the middle of transaction" in err,
              "no word of the open transaction in the log\n" + d.describe())
        check("not acknowledged within shutdown_timeout" not in err,
              "warned of unacknowledged transactions\n" + d.describe())
        # Confirmed may have followed the walsender's keepalives into the
        # transaction's WAL while it was decoded (the server sends again
        # every transaction that commits after the confirmed position),
        # but not up to its commit.
        commit = h.lsn_int(h.read_jsonl(out)[0]["commit_lsn"])
        conf = h.lsn_int(c.slot(SLOT)["confirmed_flush_lsn"])
        check(conf <= commit, "confirmed_flush_lsn %s is past %s, the "
              "commit of the transaction walcastd did not finish"
              % (h.lsn_str(conf), h.lsn_str(commit)))

        # started again, it reads the transaction whole
        first = cnt()
        d = h.start_walcastd(cfg, c.tmp, name="walcastd-stop2")
        h.wait_until(lambda: cnt() >= first + ROWS, timeout=180,
                     what=lambda: "the transaction again (%d of %d lines)"
                     % (cnt.n - first, ROWS))
        d.stop()
        lines = h.read_jsonl(out)
        ids = [int(next(col["value"] for col in e["columns"]
                        if col["name"] == "id")) for e in lines[first:]]
        check(ids == list(range(1, ROWS + 1)),
              "after the restart: %d lines, not ids 1..%d in order"
              % (len(ids), ROWS))
        check(all(e["op"] == "insert" for e in lines),
              "lines other than the inserts")
    finally:
        if walsender:
            os.kill(walsender, signal.SIGCONT)
        d.kill()
    return 0


if __name__ == "__main__":
    h.main(test)
