# SPDX-License-Identifier: MIT
"""Chaos: a plugin that fails one commit in fifty.

The recorder plugin (tests/recorder) acknowledges commits asynchronously
(pending) and answers every 50th commit call with WALCAST_ERROR.  Each
failure makes walcastd stop confirming, back off and replay from the last
confirmed position, in the same process.  While a workload over four
tenant schemas runs, every committed change — as the database records it
— must reach the plugin, and the file sink beside it, which keeps a
position, must have each of them exactly once.

Prints one line: CHAOS {"test":"plugin-fail-commit",...}.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

CHANGES = 20000
WRITE_SECONDS = 12
FAIL_COMMIT_EVERY = 50


def test():
    rng = h.chaos_seed()
    c = h.Cluster()
    # small transactions: many commits, so many failures
    w = h.ChaosWorkload(c, rng, min_rows=4, max_rows=40, big_every=0)
    w.setup()
    out = os.path.join(c.tmp, "recorder.jsonl")
    # beside it, the file sink: every replay the recorder causes reaches
    # it too, and its position must keep it from writing anything twice
    changes = os.path.join(c.tmp, "changes.jsonl")
    sink = ("  - file:\n      path: %s\n" % h.yq(changes) +
            h.recorder_sink_yaml({"out": out, "pending": "true",
                                  "fail_commit_every": FAIL_COMMIT_EVERY}))
    # a short status interval: the backoff starts afresh only once the
    # confirmed position has moved (been sent)
    cfg = h.write_config(os.path.join(c.tmp, "fail.yaml"), c.dsn(),
                         "plugin_fail", None, status_interval="250ms",
                         filt={"schemas": {"include": [h.CHAOS_SCHEMA_GLOB]}},
                         extra="sinks:\n" + sink +
                         # every replay is logged, the ones after a failure
                         # in a row at debug: count them all
                         "log:\n  level: debug\n")
    t0 = time.monotonic()
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-fail")
    w.start(CHANGES, seconds=WRITE_SECONDS)
    w.wait()
    target = c.wait_flushed()
    h.chaos_wait_confirmed(c, "plugin_fail", target, [d], timeout=240)
    secs = time.monotonic() - t0
    d.stop()
    failed = 0
    with open(out, "rb") as f:
        for line in f:
            if b'"failed":true' in line and json.loads(line)["kind"] == \
                    "commit":
                failed += 1
    replays = d.stderr().count(">replaying from ")
    h.log("%d commits failed, %d replays" % (failed, replays))
    check(failed >= 5, "only %d commits failed: the test failed too little"
          % failed)
    check(replays >= failed, "%d failed commits but %d replays"
          % (failed, replays))
    h.chaos_result("plugin-fail-commit",
                   "%d failed commits (1 in %d)" % (failed,
                                                    FAIL_COMMIT_EVERY),
                   w.expected(), h.chaos_read_lines(out, "kind"), secs,
                   {"replays": replays})
    h.chaos_result("plugin-fail-commit-file",
                   "%d failed commits of another sink" % failed,
                   w.expected(), h.chaos_read_lines(changes, "op"), secs,
                   {"replays": replays}, exactly_once=True)


if __name__ == "__main__":
    h.main(test)
