# SPDX-License-Identifier: MIT
"""Sink positions (plugin ABI 1.4): a plugin that reports the end of the
last transaction it holds gets each transaction once.

The recorder plugin (tests/recorder) with `position: true` reports the
end_lsn of the last commit line in its file at init and after each commit
line it writes.

- replays: beside it, a second recorder fails one commit in about 25,
  so walcastd replays from the confirmed position again and again; the
  failing one gets repeats (marked "replay"), the positioned one none.
- kill -9: walcastd is killed mid-stream three times and started again;
  the positioned recorder reads its position back from its own file and
  again gets each transaction once.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402


def case_replays():
    c = h.Cluster()
    rng = h.chaos_seed()
    w = h.ChaosWorkload(c, rng, min_rows=4, max_rows=30, big_every=0)
    w.setup()
    failing = os.path.join(c.tmp, "failing.jsonl")
    kept = os.path.join(c.tmp, "kept.jsonl")
    # the failing sink first: its commit fails before the positioned one
    # sees the commit, which then gets the transaction again whole
    sinks = (h.recorder_sink_yaml({"out": failing, "pending": "true",
                                   "fail_commit_every": 25}) +
             h.recorder_sink_yaml({"out": kept, "position": "true"}))
    cfg = h.write_config(os.path.join(c.tmp, "replays.yaml"), c.dsn(),
                         "positions", None, status_interval="250ms",
                         filt={"schemas": {"include": [h.CHAOS_SCHEMA_GLOB]}},
                         extra="sinks:\n" + sinks)
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-positions")
    w.start(6000, seconds=8)
    w.wait()
    target = c.wait_flushed()
    h.chaos_wait_confirmed(c, "positions", target, [d], timeout=240)
    d.stop()
    replays = d.stderr().count(">replaying from ")
    marked = sum(1 for e in h.read_jsonl(failing, True)
                 if e.get("kind") == "commit" and e.get("replay"))
    h.log("%d replays; the failing sink got %d commits marked as replays"
          % (replays, marked))
    check(replays >= 3, "only %d replays: the test failed too little"
          % replays)
    check(marked >= 1, "no transaction was marked as a replay")
    res = h.chaos_result("positions-replay-at-least-once", "replays",
                         w.expected(), h.chaos_read_lines(failing, "kind"),
                         0)
    check(res["duplicates"] > 0, "the at-least-once sink got no repeats: "
          "the test replayed nothing it had delivered")
    h.chaos_result("positions-replay-exactly-once", "replays",
                   w.expected(),
                   h.chaos_read_lines(kept, "kind", whole_txns=True), 0,
                   exactly_once=True)


def case_kill9():
    c = h.Cluster()
    rng = h.chaos_seed()
    w = h.ChaosWorkload(c, rng, big_every=40)
    w.setup()
    kept = os.path.join(c.tmp, "kill9-kept.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "kill9.yaml"), c.dsn(),
                         "positions_kill9", None,
                         filt={"schemas": {"include": [h.CHAOS_SCHEMA_GLOB]}},
                         extra="sinks:\n" +
                         h.recorder_sink_yaml({"out": kept,
                                               "position": "true"}))
    lines = h.LineCounter(kept)
    secs, mid = h.chaos_kill9_run(c, rng, cfg, "positions_kill9", w, lines,
                                  kills=3, changes=30000, write_seconds=12,
                                  name="walcastd-pos-kill9")
    # a kill with nothing in flight tests nothing
    check(mid >= 1, "no kill left changes in flight")
    h.chaos_result("positions-kill9", "3x kill -9", w.expected(),
                   h.chaos_read_lines(kept, "kind", whole_txns=True), secs,
                   {"kills_with_changes_in_flight": mid}, exactly_once=True)


def test():
    # a cluster each: the workloads' bookkeeping (chaos.txlog) is per
    # database
    cases = h.Cases()
    for name, fn in [("replays", case_replays), ("kill9", case_kill9)]:
        cases.run(name, fn)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
