# SPDX-License-Identifier: MIT
"""Chaos: kill -9 of walcastd, five times, with the Kafka sink.

The workload of test_chaos_kill9_jsonl (200,000 changes over four tenant
schemas) goes to librdkafka's mock cluster (tests/tools/kafka_mock, a
process) through walcastd's Kafka sink, while walcastd is killed with
SIGKILL at five random moments and started again after each.  Then the
topics are read back with kcat: every change that committed — as the
database records it — must be in Kafka; duplicates are counted, not
failed.

Prints one line: CHAOS {"test":"kill9-kafka",...}.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CHANGES = 200000
KILLS = 5
PARTITIONS = 2


def test():
    h.kcat_path()
    rng = h.chaos_seed()
    c = h.Cluster()
    w = h.ChaosWorkload(c, rng)
    w.setup()
    mock = h.KafkaMock(c.tmp, brokers=1)
    topics = w.kafka_topics(mock, PARTITIONS)
    cfg = h.write_config(os.path.join(c.tmp, "kill9.yaml"), c.dsn(), "kill9",
                         None,
                         filt={"schemas": {"include": [h.CHAOS_SCHEMA_GLOB]}},
                         extra="sinks:\n" + h.kafka_sink_yaml(mock.bootstrap))

    def confirmed():
        return h.lsn_int(c.slot("kill9")["confirmed_flush_lsn"])
    secs, mid = h.chaos_kill9_run(c, rng, cfg, "kill9", w, confirmed,
                                  kills=KILLS, changes=CHANGES)
    h.chaos_result("kill9-kafka", "%dx kill -9" % KILLS, w.expected(),
                   h.kafka_change_ids(mock.bootstrap, topics), secs,
                   {"kills_with_changes_in_flight": mid})
    mock.stop()


if __name__ == "__main__":
    h.main(test)
