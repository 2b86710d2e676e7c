# SPDX-License-Identifier: MIT
"""Kafka sink with librdkafka's `debug` property: does walcastd still
deliver and confirm?  (Found while chasing the loss of
test_chaos_kafka_errors.py with librdkafka debug logs on.)

Regression test: librdkafka queued its log lines during rd_kafka_new(),
before walcastd enabled the queue's wake-up pipe, and only writes a
wake-up when the queue goes from empty to not empty; the queue stayed
non-empty and silent, so no delivery report was ever served and the slot
never moved.  The sink now wakes itself once after enabling the pipe.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

def test():
    c = h.Cluster()
    c.sql('CREATE SCHEMA "t1-acme"; CREATE TABLE "t1-acme".x (id int '
          'PRIMARY KEY);')
    mock = h.KafkaMock(c.tmp, brokers=1)
    mock.cmd("topic walcast.t1-acme.x 1")
    for debug in (None, "msg"):
        slot = "dbg_" + (debug or "none")
        props = {"debug": debug} if debug else {}
        cfg = h.write_config(
            os.path.join(c.tmp, slot + ".yaml"), c.dsn(), slot, None,
            extra="sinks:\n" + h.kafka_sink_yaml(mock.bootstrap, props)
            + "log:\n  level: debug\n")
        d = h.start_walcastd(cfg, c.tmp, name="walcastd-" + slot)
        c.sql('INSERT INTO "t1-acme".x VALUES (%d);'
              % (1 if debug is None else 2))
        target = c.wait_flushed()
        h.chaos_wait_confirmed(c, slot, target, [d], timeout=30,
                               what="walcastd with debug=%s to confirm "
                               "one insert" % debug)
        if debug:
            check("librdkafka" in d.stderr(), "no librdkafka debug line "
                  "reached walcastd's log")
        d.stop()


if __name__ == "__main__":
    h.main(test)
