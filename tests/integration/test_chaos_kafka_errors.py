# SPDX-License-Identifier: MIT
"""Chaos: retriable produce errors (and a broker down for 30 s).

test_chaos_kafka_outage.py with WC_CHAOS_PRODUCE_ERRORS=1: the mock
cluster answers 15 Produce requests with NOT_ENOUGH_REPLICAS and 15 with
NOT_LEADER_FOR_PARTITION a few seconds into the stream, and again after
the outage.

The sink runs with max.in.flight.requests.per.connection=1 here.  With
more requests in flight, librdkafka 2.0.2's mock cluster appended an
idempotent producer's second batch after refusing the first (a real
broker answers OUT_OF_ORDER_SEQUENCE_NUMBER), and librdkafka, by the
protocol's rules, took the refused messages as delivered ("implicitly
acked by subsequent batch success"): one to five changes went missing
from the mock in about two runs of five, a fault of the test cluster, not
of walcast or of a real broker (traced with librdkafka's debug=msg).
"""

import os
import runpy
import sys

if __name__ == "__main__":
    os.environ["WC_CHAOS_PRODUCE_ERRORS"] = "1"
    os.environ["WC_CHAOS_NAME"] = "kafka-produce-errors"
    here = os.path.dirname(os.path.abspath(__file__))
    sys.argv[0] = os.path.join(here, "test_chaos_kafka_outage.py")
    runpy.run_path(sys.argv[0], run_name="__main__")
