# SPDX-License-Identifier: MIT
"""The consumers compared, and one measured run of a consumer on a slot."""

import os
import time

from .cluster import PGBIN
from .procs import Child, proc_cpu_seconds

# The options walcastd sends in START_REPLICATION (lib/stream/stream.c);
# pg_recvlogical gets the same ones.
W2J_OPTIONS = [("format-version", "2"), ("include-transaction", "1"),
               ("include-xids", "1"), ("include-lsn", "1"),
               ("include-pk", "1"), ("include-timestamp", "1"),
               ("include-type-oids", "1")]
NUMERIC_OPTION = ("numeric-data-types-as-string", "1")

# pgoutput: the publication (workloads.py creates it, FOR ALL TABLES,
# before any slot) and what walcastd sends on PostgreSQL 15
# (lib/decode/pgoutput.c)
PUBLICATION = "walcast_bench"
PGO_OPTIONS = [("proto_version", "2"),
               ("publication_names", '"%s"' % PUBLICATION),
               ("messages", "true")]

# walcastd reports its confirmed position this often (the minimum).  A
# measured run no longer waits for it: walcastd --endpos sends the final
# status as soon as the end position is acknowledged and exits, like
# pg_recvlogical -E.  The latency and profile runs still use it.
STATUS_INTERVAL = "100ms"
POLL_S = 0.02


class Consumer:
    """kind: 'recv' (pg_recvlogical, stops itself at --endpos) or
    'walcast' (walcastd, stops itself at --endpos once the end position
    is acknowledged by its sinks and confirmed to the server)."""

    def __init__(self, name, label, kind, sink, extra=(), plugin="wal2json"):
        self.name, self.label, self.kind, self.sink = name, label, kind, sink
        # more lines of the sink's block
        self.extra = list(extra)
        self.plugin = plugin

    def output_path(self, rundir):
        if self.sink in ("recv-file", "file", "jsonl"):
            return os.path.join(rundir, self.name + ".out")
        return None

    def argv(self, ctx, slot, endpos_str, rundir):
        out = self.output_path(rundir)
        if self.kind == "recv":
            a = [os.path.join(PGBIN, "pg_recvlogical"), "-d", ctx.dsn,
                 "-S", slot, "--start", "-E", endpos_str, "--no-loop",
                 "-f", out or "/dev/null"]
            for k, v in (ctx.w2j_options if self.plugin == "wal2json"
                         else PGO_OPTIONS):
                a += ["-o", "%s=%s" % (k, v)]
            return a
        cfg = os.path.join(rundir, self.name + ".yaml")
        lines = ["source:",
                 "  dsn: \"%s\"" % ctx.dsn,
                 "  slot: %s" % slot,
                 "  create_slot: false",
                 "  status_interval: %s" % STATUS_INTERVAL]
        if self.plugin == "pgoutput":
            lines += ["  decoder: pgoutput",
                      "  publication: %s" % PUBLICATION,
                      "  create_publication: false"]
        lines += ["sinks:"]
        if self.sink == "null":
            lines += ["  - file:", "      path: /dev/null",
                      "      fsync: false"]
        elif self.sink == "file":
            lines += ["  - file:", "      path: \"%s\"" % out,
                      "      fsync: true"]
        elif self.sink in ("kafka", "kafka-eos"):
            from .kafka import sink_yaml
            lines += sink_yaml(ctx.bootstrap, getattr(ctx, "kafka_topic",
                                                      None),
                               exactly_once=self.sink == "kafka-eos")
            lines += self.extra
        elif self.sink == "jsonl":
            lines += ["  - plugin:", "      path: \"%s\"" % ctx.jsonl_so,
                      "      config:", "        file: \"%s\"" % out,
                      "        fsync: \"true\""]
        else:
            raise RuntimeError("no sink configuration for %s" % self.name)
        lines += ["log:", "  level: info"]
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        return [ctx.walcastd, "-c", cfg, "--endpos", endpos_str]


CONSUMERS = [
    Consumer("recv-file", "pg_recvlogical > file", "recv", "recv-file"),
    Consumer("recv-null", "pg_recvlogical > /dev/null", "recv", "recv-null"),
    Consumer("walcast-null", "walcastd, file sink /dev/null", "walcast",
             "null"),
    # the same with pgoutput, PostgreSQL's own plugin, through a
    # publication of every table
    Consumer("recv-pgo-null", "pg_recvlogical pgoutput > /dev/null",
             "recv", "recv-null", plugin="pgoutput"),
    Consumer("walcast-pgo-null", "walcastd pgoutput, file sink /dev/null",
             "walcast", "null", plugin="pgoutput"),
    Consumer("walcast-jsonl", "walcastd, jsonl plugin (file, fsync)",
             "walcast", "jsonl"),
    Consumer("walcast-file", "walcastd, file sink (file, fsync)", "walcast",
             "file"),
    # The Kafka sink to tests/tools/kafka_mock (librdkafka's mock cluster,
    # one broker, a fresh one per run: it keeps every message in memory).
    # Available when the build has kafka_mock (built with the tests); the
    # run ends like the other walcastd runs, when walcastd exits at the end
    # position (its confirmed position waits for Kafka's delivery reports).
    Consumer("walcast-kafka", "walcastd, Kafka sink (mock cluster)",
             "walcast", "kafka"),
    # The same with Debezium's format and JsonConverter's schemas (issue
    # 20: at most 1 µs of CPU per change more than walcast-kafka).
    Consumer("walcast-kafka-debezium",
             "walcastd, Kafka sink, value_format debezium, schemas",
             "walcast", "kafka",
             extra=["      value_format: debezium",
                    "      schemas_enable: true"]),
    # ... and without the schemas: the payload alone
    Consumer("walcast-kafka-debezium-payload",
             "walcastd, Kafka sink, value_format debezium",
             "walcast", "kafka", extra=["      value_format: debezium"]),
    # The same with `exactly_once: true`: Kafka transactions, one per
    # batch, with the position in {prefix}.offsets (only on request).
    Consumer("walcast-kafka-eos",
             "walcastd, Kafka sink exactly once (mock cluster)", "walcast",
             "kafka-eos"),
]
BY_NAME = {c.name: c for c in CONSUMERS}
DEFAULT = ["recv-file", "recv-null", "walcast-null", "walcast-jsonl",
           "recv-pgo-null", "walcast-pgo-null"]


class RunFailed(Exception):
    pass


def run(ctx, consumer, slot, endpos, rundir, timeout=900.0, before=None,
        after=None):
    """Consumes `slot` up to `endpos` with `consumer`; returns a dict of
    measurements.  Every consumer stops itself at `endpos` and the run ends
    when it exits; meanwhile the cluster connection polls the slot every
    20 ms (the same for every consumer) to find the walsender.
    before(mock), after(mock): for the Kafka sink, called with the mock
    cluster before walcastd starts (to create topics) and after it exits
    (to read back what it produced)."""
    mock = None
    if consumer.sink in ("kafka", "kafka-eos"):
        from .kafka import Mock
        mock = Mock(ctx.kafka_mock, os.path.join(
            rundir, "kafka_mock.%s.stderr" % slot))
        ctx.bootstrap = mock.bootstrap
    try:
        if mock and before:
            before(mock)
        r = _run(ctx, consumer, slot, endpos, rundir, timeout)
        if mock and after:
            after(mock)
    finally:
        if mock:
            mock.stop()
    if mock:
        r["kafka_cpu"] = mock.cpu_seconds()
    return r


def _run(ctx, consumer, slot, endpos, rundir, timeout):
    from .cluster import lsn_str
    argv = consumer.argv(ctx, slot, lsn_str(endpos), rundir)
    errpath = os.path.join(rundir, "%s.%s.stderr" % (consumer.name, slot))
    errf = open(errpath, "wb")
    try:
        child = Child(argv, consumer.name, stderr=errf)
    finally:
        errf.close()
    ws_pid, ws_cpu, t_end, hwm = None, None, None, 0
    samples, client_bound = 0, 0
    deadline = time.monotonic() + timeout
    while True:
        # ru_maxrss from wait4() would include the RSS of this Python
        # process at fork time (Linux keeps the pre-exec peak): sample the
        # program's own VmHWM instead, which only grows.
        hwm = max(hwm, vm_hwm_kb(child.pid))
        pid, _, wait = ctx.cluster.slot_monitor(slot)
        if pid:
            # the walsender waits on WalSenderWriteData when the client
            # does not take the data as fast as it is produced
            samples += 1
            client_bound += wait == "WalSenderWriteData"
            ws_pid = pid
            c = proc_cpu_seconds(pid)
            if c is not None:
                ws_cpu = c
        if child.wait(POLL_S):
            t_end = child.t_end
            break
        if time.monotonic() > deadline:
            child.stop(5)
            raise RunFailed("%s on slot %s: not done after %.0f s\n%s"
                            % (consumer.name, slot, timeout, tail(errpath)))
    if child.status != 0 or t_end is None:
        raise RunFailed("%s on slot %s exited with %s before the end "
                        "position\n%s" % (consumer.name, slot, child.status,
                                          tail(errpath)))
    if consumer.kind == "walcast":
        # walcastd exits 0 at --endpos only once the server has the
        # position: hold it to that
        confirmed = ctx.cluster.slot_monitor(slot)[1]
        if confirmed < endpos:
            raise RunFailed("%s on slot %s exited with the slot confirmed "
                            "at %s, short of the end position %s\n%s"
                            % (consumer.name, slot, lsn_str(confirmed),
                               lsn_str(endpos), tail(errpath)))
    return {
        "wall": t_end - child.t_start,
        "cpu": child.cpu_seconds(),
        "user": child.rusage.ru_utime,
        "sys": child.rusage.ru_stime,
        "maxrss_kb": hwm,
        "walsender_cpu": ws_cpu,
        "walsender_pid": ws_pid,
        "client_bound": client_bound / samples if samples else None,
        "output": consumer.output_path(rundir),
        "stderr": errpath,
    }


def vm_hwm_kb(pid):
    """Peak resident set size of a running process (VmHWM), kB; 0 when it
    has exited."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def count_prefixes(path, prefixes):
    """How many lines of the file start with each byte prefix, and the
    file's size; reads 4 MiB at a time."""
    counts = dict.fromkeys(prefixes, 0)
    size, carry = 0, b""
    with open(path, "rb") as f:
        while True:
            b = f.read(4 << 20)
            size += len(b)
            buf = carry + b
            cut = buf.rfind(b"\n") + 1 if b else len(buf)
            lines, carry = buf[:cut], buf[cut:]
            for p in prefixes:
                counts[p] += lines.count(b"\n" + p) + lines.startswith(p)
            if not b:
                return counts, size
