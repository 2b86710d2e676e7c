# SPDX-License-Identifier: MIT
"""Restart without loss or duplicates.

batch 1 -> walcastd -> SIGTERM (exit 0) -> batch 2 while stopped ->
walcastd again -> SIGINT (exit 0): the output file holds every change of
both batches exactly once, in commit order, and the slot's
confirmed_flush_lsn is the end_lsn of the last transaction.
"""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, fail  # noqa: E402

SCHEMA = "town6-govikon"
TXNS_PER_BATCH = 40


def run_batch(c, batch):
    """TXNS_PER_BATCH transactions of 3 changes each; returns the expected
    (op, id, v) triples in commit order, grouped by transaction."""
    expected = []
    script = []
    for t in range(TXNS_PER_BATCH):
        base = batch * 100000 + t * 10
        script.append(
            "BEGIN;"
            "INSERT INTO \"%s\".r VALUES (%d, 'b%d-t%d-a'), (%d, 'b%d-t%d-b');"
            "UPDATE \"%s\".r SET v = 'upd' WHERE id = %d;"
            "COMMIT;" % (SCHEMA, base, batch, t, base + 1, batch, t,
                         SCHEMA, base))
        expected.append([("insert", base, "b%d-t%d-a" % (batch, t)),
                         ("insert", base + 1, "b%d-t%d-b" % (batch, t)),
                         ("update", base, "upd")])
    c.sql("\n".join(script))
    return expected


def summarize(lines):
    out = []
    for e in lines:
        cols = {col["name"]: col["value"] for col in e.get("columns", [])}
        out.append((e.get("op"), int(cols.get("id", -1)), cols.get("v")))
    return out


def check_order(lines, expected_txns, label):
    want = [x for txn in expected_txns for x in txn]
    got = summarize(lines)
    if got != want:
        # describe the first divergence, duplicates and gaps
        seen, dups = set(), []
        for x in got:
            if x in seen:
                dups.append(x)
            seen.add(x)
        missing = [x for x in want if x not in seen]
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                     min(len(got), len(want)))
        fail("%s: %d changes, expected %d; first difference at line %d "
             "(got %r, expected %r); %d duplicated (e.g. %r); %d missing "
             "(e.g. %r)" % (label, len(got), len(want), first + 1,
                            got[first] if first < len(got) else None,
                            want[first] if first < len(want) else None,
                            len(dups), dups[:3], len(missing), missing[:3]))
    # transactions: contiguous, one xid / commit_lsn / end_lsn each, commit
    # LSNs strictly increasing
    i, prev_end = 0, 0
    for n, txn in enumerate(expected_txns):
        group = lines[i:i + len(txn)]
        i += len(txn)
        keys = {(str(e.get("xid")), e.get("commit_lsn"), e.get("end_lsn"))
                for e in group}
        check(len(keys) == 1, "%s: transaction %d has mixed xid/commit_lsn/"
              "end_lsn %r" % (label, n, keys))
        end = h.lsn_int(group[0]["end_lsn"])
        check(end > prev_end, "%s: transaction %d end_lsn %s not after the "
              "previous one" % (label, n, group[0]["end_lsn"]))
        prev_end = end
    # one LSN per change
    lsns = [(e["lsn"], e["op"]) for e in lines]
    check(len(set(lsns)) == len(lsns), "%s: repeated change LSNs" % label)


def check_confirmed(c, slot, last_end, label):
    """confirmed_flush_lsn must be the end_lsn of the last transaction.  A
    daemon may also confirm a keepalive position past it when nothing is in
    flight; that is accepted only if no transaction committed in between."""
    conf = c.slot(slot)["confirmed_flush_lsn"]
    h.log("%s: confirmed_flush_lsn %s, last end_lsn %s"
          % (label, conf, h.lsn_str(last_end)))
    check(conf is not None, "%s: slot has no confirmed_flush_lsn" % label)
    ci = h.lsn_int(conf)
    if ci == last_end:
        return
    check(ci > last_end, "%s: confirmed_flush_lsn %s is before the end_lsn "
          "%s of the last transaction written (its changes would be "
          "replayed)" % (label, conf, h.lsn_str(last_end)))
    later = [e for e in h.oracle_read(c, "oracle")
             if last_end < h.lsn_int(e.get("end_lsn", "0/0")) <= ci]
    check(not later, "%s: confirmed_flush_lsn %s skips past transactions "
          "that were not written: %r" % (label, conf, later[:2]))
    h.log("%s: confirmed past the last transaction (keepalive position, "
          "nothing in between): accepted" % label)


def test():
    c = h.Cluster()
    c.sql('CREATE SCHEMA "%s"; CREATE TABLE "%s".r (id int PRIMARY KEY, '
          'v text);' % (SCHEMA, SCHEMA))
    out = os.path.join(c.tmp, "out.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "w.yaml"), c.dsn(), "restart",
                         out)

    d1 = h.start_walcastd(cfg, c.tmp, name="walcastd-run1")
    h.oracle_create(c, "oracle")
    b1 = run_batch(c, 1)
    n1 = sum(len(t) for t in b1)
    cnt = h.LineCounter(out)
    h.wait_until(lambda: cnt() >= n1, timeout=60,
                 what=lambda: "%d lines of batch 1 (have %d)" % (n1, cnt.n))
    d1.stop(signal.SIGTERM)
    lines1 = h.read_jsonl(out)
    check_order(lines1, b1, "after run 1")
    check_confirmed(c, "restart", h.lsn_int(lines1[-1]["end_lsn"]),
                    "after run 1")
    slot = c.slot("restart")
    check(slot["active"] == "false", "slot still active after exit: %r"
          % slot)

    b2 = run_batch(c, 2)
    n2 = sum(len(t) for t in b2)
    check(h.count_lines(out) == n1, "output grew while walcastd was stopped")

    d2 = h.start_walcastd(cfg, c.tmp, name="walcastd-run2")
    h.wait_until(lambda: cnt() >= n1 + n2, timeout=60,
                 what=lambda: "%d lines of batches 1+2 (have %d)" % (n1 + n2,
                                                               cnt.n))
    d2.stop(signal.SIGINT)
    lines = h.read_jsonl(out)
    check_order(lines, b1 + b2, "after run 2")
    check(lines[:n1] == lines1, "batch 1 lines changed after restart")
    check_confirmed(c, "restart", h.lsn_int(lines[-1]["end_lsn"]),
                    "after run 2")
    # and what the daemon wrote is what wal2json has for the slot
    probs = h.diff_changes(lines, h.oracle_read(c, "oracle"), "output")
    if probs:
        fail("output differs from wal2json:\n  " + "\n  ".join(probs))


if __name__ == "__main__":
    h.main(test)
