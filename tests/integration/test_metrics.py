# SPDX-License-Identifier: MIT
"""Prometheus metrics and health endpoints during a workload.

The counters scraped from /metrics match the changes written: by op, per
schema, transactions; the sink acknowledged; the confirmed position
reaches the end of the last transaction; /healthz and /readyz answer.
"""

import os
import re
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def parse(text):
    """{(name, frozenset(labels)): value} of a Prometheus text page."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$', line)
        check(m, "not a Prometheus sample line: %r" % line)
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"',
                                      m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def test():
    c = h.Cluster()
    c.sql('CREATE SCHEMA "town6-a"; CREATE SCHEMA "org-b";'
          'CREATE TABLE "town6-a".t (id int PRIMARY KEY, v text);'
          'CREATE TABLE "org-b".t (id int PRIMARY KEY, v text);')
    port = h.free_port()
    out = os.path.join(c.tmp, "out.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "w.yaml"), c.dsn(), "metrics",
                         out, extra='metrics:\n  listen: "127.0.0.1:%d"\n'
                         % port)
    d = h.start_walcastd(cfg, c.tmp)
    base = "http://127.0.0.1:%d" % port
    check(get(base + "/healthz")[0] == 200, "/healthz is not 200")
    status, body = get(base + "/readyz")
    check(status == 200, "/readyz while streaming: %s %s" % (status, body))

    c.sql('INSERT INTO "town6-a".t SELECT g, \'x\' FROM generate_series(1, '
          '300) g;'
          'INSERT INTO "org-b".t SELECT g, \'y\' FROM generate_series(1, 200) g;'
          'UPDATE "org-b".t SET v = \'z\' WHERE id <= 50;'
          'DELETE FROM "town6-a".t WHERE id <= 100;'
          'TRUNCATE "org-b".t;')
    end = h.lsn_int(c.sql_value("SELECT pg_current_wal_lsn()"))
    cnt = h.LineCounter(out)
    h.wait_until(lambda: cnt() >= 651, timeout=30, what="651 lines")

    def confirmed():
        m = parse(get(base + "/metrics")[1])
        return m.get(("walcast_confirmed_lsn", frozenset()), 0) >= end - 4096

    # the status interval is 1 s: the gauge follows within a few
    h.wait_until(confirmed, timeout=15, what="confirmed_lsn near the end")
    status, body = get(base + "/metrics")
    check(status == 200, "/metrics: %s" % status)
    m = parse(body)

    def val(name, **labels):
        key = (name, frozenset(labels.items()))
        check(key in m, "missing %s%r in:\n%s" % (name, labels, body))
        return m[key]

    check(val("walcast_changes_total", op="insert") == 500, "inserts")
    check(val("walcast_changes_total", op="update") == 50, "updates")
    check(val("walcast_changes_total", op="delete") == 100, "deletes")
    check(val("walcast_changes_total", op="truncate") == 1, "truncates")
    check(val("walcast_schema_changes_total", schema="town6-a") == 400,
          "town6-a: 300 inserts + 100 deletes")
    check(val("walcast_schema_changes_total", schema="org-b") == 251,
          "org-b: 200 inserts + 50 updates + 1 truncate")
    check(val("walcast_transactions_total") >= 5, "transactions")
    sink = "file:" + out
    check(val("walcast_sink_acks_total", sink=sink) >= 5, "sink acks")
    check(val("walcast_sink_errors_total", sink=sink) == 0, "sink errors")
    check(val("walcast_streaming") == 1, "streaming gauge")
    check(val("walcast_ready") == 1, "ready gauge")
    check(val("walcast_received_bytes_total") > 651 * 50, "bytes received")
    check(val("walcast_lag_bytes") < 1 << 20, "lag bytes")
    check(get(base + "/nope")[0] == 404, "unknown path is not 404")
    d.stop()
    h.log("scraped %d samples; confirmed %s" % (len(m), h.lsn_str(
        int(val("walcast_confirmed_lsn")))))


if __name__ == "__main__":
    h.main(test)
