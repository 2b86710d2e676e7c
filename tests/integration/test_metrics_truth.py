# SPDX-License-Identifier: MIT
"""The metrics tell the truth from the first second and when idle.

1. At start, before any status message: walcast_confirmed_lsn is the
   slot's confirmed position and walcast_lag_bytes what lies between it
   and the server's WAL end (not 0 and the whole WAL).
2. On an idle database that walcastd has caught up with,
   walcast_lag_seconds stays 0 instead of counting the time since the last
   commit.
3. With every Kafka broker down, /readyz answers 503 (a sink cannot
   deliver) and ready again once a broker is back.
4. Two sinks of one kind are two series of walcast_sink_acks_total (their
   default names "kafka#1", "kafka#2"; or the `name:` given).
"""

import os
import re
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402


def get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(port):
    """{name or name{labels}: float}"""
    _, text = get(port, "/metrics")
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(walcast_\S+) (\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def metrics_yaml(port):
    return "metrics:\n  listen: 127.0.0.1:%d\n" % port


def case_start(c):
    c.sql("CREATE TABLE st (id int PRIMARY KEY, v text);")
    c.sql("SELECT pg_create_logical_replication_slot('mstart', 'wal2json')")
    slot_at = h.lsn_int(c.slot("mstart")["confirmed_flush_lsn"])
    # WAL the slot has not confirmed: a few MB of it
    c.sql("INSERT INTO st SELECT g, repeat('x', 1000) FROM "
          "generate_series(1, 3000) g;")
    end = c.wait_flushed()
    port = h.free_port()
    out = os.path.join(c.tmp, "start.jsonl")
    # no status message for a minute: what the metrics say comes from
    # the slot and the server
    cfg = h.write_config(os.path.join(c.tmp, "start.yaml"), c.dsn(),
                         "mstart", out, status_interval="60s",
                         extra=metrics_yaml(port))
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-start")
    m = samples(port)
    h.log("at start: confirmed %s, lag %s bytes, slot at %s, WAL end %s"
          % (h.lsn_str(int(m["walcast_confirmed_lsn"])),
             int(m["walcast_lag_bytes"]), h.lsn_str(slot_at), h.lsn_str(end)))
    # (what was delivered since may be confirmed already: a status
    # message goes out every second while reading waits for the sinks)
    check(slot_at <= m["walcast_confirmed_lsn"] <= end,
          "walcast_confirmed_lsn is %d at start, the slot is at %d"
          % (m["walcast_confirmed_lsn"], slot_at))
    check(m["walcast_lag_bytes"] <= end - slot_at + 65536,
          "walcast_lag_bytes is %d at start; the slot is %d bytes behind"
          % (m["walcast_lag_bytes"], end - slot_at))
    d.stop()


def case_idle(c):
    c.sql("CREATE TABLE idle (id int PRIMARY KEY);")
    port = h.free_port()
    out = os.path.join(c.tmp, "idle.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "idle.yaml"), c.dsn(),
                         "midle", out, extra=metrics_yaml(port))
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-idle")
    c.sql("INSERT INTO idle VALUES (1);")
    end = c.wait_flushed()
    h.wait_until(lambda: h.count_lines(out) >= 1, timeout=20,
                 what="the insert delivered")
    h.wait_until(lambda: samples(port)["walcast_confirmed_lsn"] >= end,
                 timeout=20, what="the insert confirmed")
    time.sleep(3)
    first = samples(port)["walcast_lag_seconds"]
    time.sleep(2)
    second = samples(port)["walcast_lag_seconds"]
    h.log("idle lag: %.3f s, then %.3f s" % (first, second))
    check(first < 1 and second < 1,
          "walcast_lag_seconds grows on an idle, caught-up database: "
          "%.3f then %.3f" % (first, second))
    # a change still counts as lag while it is on its way
    check(samples(port)["walcast_lag_bytes"] < 65536, "lag bytes when idle")
    d.stop()


def case_kafka(c):
    c.sql("CREATE TABLE kt (id int PRIMARY KEY);")
    mock = h.KafkaMock(c.tmp, brokers=1)
    mock.cmd("topic walcast.public.kt 1")
    port = h.free_port()
    out = os.path.join(c.tmp, "k.jsonl")
    extra = (h.kafka_sink_yaml(mock.bootstrap) +
             h.kafka_sink_yaml(mock.bootstrap) +
             h.kafka_sink_yaml(mock.bootstrap).replace(
                 "  - kafka:\n", "  - kafka:\n      name: audit\n") +
             metrics_yaml(port))
    cfg = h.write_config(os.path.join(c.tmp, "k.yaml"), c.dsn(), "mkafka",
                         out, extra=extra)
    # sinks: the file (#1), then the Kafka sinks (#2, #3, "audit")
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-kafka")
    c.sql("INSERT INTO kt VALUES (1);")
    h.wait_until(lambda: samples(port).get(
                     'walcast_sink_acks_total{sink="audit"}', 0) >= 1,
                 timeout=30, what="the named sink's acknowledgement")
    m = samples(port)
    names = sorted(k for k in m if k.startswith("walcast_sink_acks_total"))
    h.log("series: %r" % names)
    for n in ("kafka#2", "kafka#3", "audit"):
        key = 'walcast_sink_acks_total{sink="%s"}' % n
        check(m.get(key, 0) >= 1, "no series %s with an ack: %r"
              % (key, names))
    check(get(port, "/readyz")[0] == 200, "not ready with Kafka up")

    mock.cmd("down 1")
    c.sql("INSERT INTO kt VALUES (2);")
    h.wait_until(lambda: get(port, "/readyz")[0] == 503, timeout=60,
                 what=lambda: "/readyz 503 with every broker down\n"
                 + d.describe())
    status, body = get(port, "/readyz")
    check("sinks_ready=0" in body, "/readyz says %r" % body)
    mock.cmd("up 1")
    h.wait_until(lambda: get(port, "/readyz")[0] == 200, timeout=60,
                 what=lambda: "/readyz 200 with a broker back\n"
                 + d.describe())
    d.stop()
    mock.stop()


def test():
    c = h.Cluster()
    cases = h.Cases()
    cases.run("the metrics at start come from the slot", case_start, c)
    cases.run("no lag in seconds when idle and caught up", case_idle, c)
    cases.run("Kafka down: not ready; two Kafka sinks: two series",
              case_kafka, c)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
