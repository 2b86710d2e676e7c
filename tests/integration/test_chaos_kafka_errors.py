# SPDX-License-Identifier: MIT
"""Chaos: retriable produce errors (and a broker down for 30 s).

test_chaos_kafka_outage.py with WC_CHAOS_PRODUCE_ERRORS=1: the mock
cluster answers 15 Produce requests with NOT_ENOUGH_REPLICAS and 15 with
NOT_LEADER_FOR_PARTITION a few seconds into the stream, and again after
the outage.

SKIPPED by default — KNOWN BUG "kafka: change lost after retriable produce
errors": in about two runs out of five one or two changes of a
low-volume topic (a walcast.<tenant>.counters update produced around the
moment the errors are injected) are missing from Kafka, although
walcastd confirmed their transaction (no delivery failure logged, no
replay).  Whether the acknowledgement is wrong in walcastd's Kafka sink,
in librdkafka's idempotent producer, or in librdkafka's mock cluster is
not settled yet.  Run it with WC_CHAOS_KNOWN_BUGS=1.
"""

import os
import runpy
import sys

BUG = ('known bug "kafka: change lost after retriable produce errors" '
       '(see this file\'s docstring); set WC_CHAOS_KNOWN_BUGS=1 to run it')

if __name__ == "__main__":
    if os.environ.get("WC_CHAOS_KNOWN_BUGS") != "1":
        print("[it] SKIP test_chaos_kafka_errors.py: " + BUG, flush=True)
        sys.exit(0)
    os.environ["WC_CHAOS_PRODUCE_ERRORS"] = "1"
    os.environ["WC_CHAOS_NAME"] = "kafka-produce-errors"
    here = os.path.dirname(os.path.abspath(__file__))
    sys.argv[0] = os.path.join(here, "test_chaos_kafka_outage.py")
    runpy.run_path(sys.argv[0], run_name="__main__")
