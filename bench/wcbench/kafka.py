# SPDX-License-Identifier: MIT
"""Kafka for the benchmark: tests/tools/kafka_mock (librdkafka's mock
cluster as a process, built with the tests) and kcat readers."""

import os
import re
import select
import shutil
import subprocess
import threading
import time

from .procs import Child

PREFIX = "bench"
TOPIC_TEMPLATE = "{prefix}.{schema}.{table}"


def topic_of(schema, table):
    """The topic TOPIC_TEMPLATE gives a table."""
    return TOPIC_TEMPLATE.format(prefix=PREFIX, schema=schema, table=table)


def find_mock(build):
    p = os.environ.get("WC_KAFKA_MOCK") or os.path.join(
        build, "tests", "tools", "kafka_mock")
    return p if os.access(p, os.X_OK) else None


def sink_yaml(bootstrap, topic=None, exactly_once=False):
    """The Kafka sink's lines of a walcastd configuration; topic: a
    template instead of TOPIC_TEMPLATE; exactly_once: Kafka transactions
    (docs/kafka.md, "Exactly once"), at their default batch bounds."""
    return ["  - kafka:",
            "      topic: \"%s\"" % (topic or TOPIC_TEMPLATE),
            "      prefix: %s" % PREFIX] + \
        (["      exactly_once: true"] if exactly_once else []) + \
        ["      properties:",
         "        bootstrap.servers: \"%s\"" % bootstrap]


class Mock:
    """One mock cluster (one broker).  It keeps every message in memory, so
    the benchmark starts a fresh one for each run and stops it after."""

    def __init__(self, path, errpath):
        self._err = open(errpath, "wb")
        self.child = Child([path, "1"], "kafka_mock", stdout=subprocess.PIPE,
                           stderr=self._err, stdin=subprocess.PIPE)
        self.errpath = errpath
        self.bootstrap = self._line(15)
        if "127.0.0.1:" not in self.bootstrap:
            raise RuntimeError("kafka_mock printed %r" % self.bootstrap)

    def _line(self, timeout):
        out = self.child.p.stdout
        deadline = time.monotonic() + timeout
        buf = b""
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([out], [], [], left)[0]:
                raise RuntimeError("kafka_mock did not answer:\n"
                                   + open(self.errpath, errors="replace")
                                   .read()[-2000:])
            b = os.read(out.fileno(), 1)
            if not b:
                raise RuntimeError("kafka_mock exited")
            buf += b
        return buf.decode().strip()

    def cmd(self, line):
        self.child.p.stdin.write((line + "\n").encode())
        self.child.p.stdin.flush()
        r = self._line(15)
        if r != "ok":
            raise RuntimeError("kafka_mock %r: %s" % (line, r))

    def cpu_seconds(self):
        return self.child.cpu_seconds() if self.child.rusage else None

    def stop(self):
        if self.child.running():
            try:
                self.child.p.stdin.close()     # EOF: a clean stop
            except OSError:
                pass
            if not self.child.wait(15):
                self.child.stop(5)
        for f in (self.child.p.stdout, self._err):
            try:
                f.close()
            except OSError:
                pass


_TS_MS = re.compile(rb'"ts_ms":(\d+)\},"op"')


class Reader(threading.Thread):
    """kcat reading one topic from the start, unbuffered; records for each
    message value its arrival time here and its source.ts_ms (the commit
    time, in milliseconds)."""

    def __init__(self, bootstrap, topic, errpath, read_committed=False):
        super().__init__(daemon=True)
        self._err = open(errpath, "wb")
        self.child = Child(
            [shutil.which("kcat"), "-b", bootstrap, "-C", "-t", topic,
             "-p", "0", "-o", "beginning", "-u", "-q", "-f", "%s\\n",
             "-X", "fetch.wait.max.ms=1", "-X", "fetch.error.backoff.ms=5"]
            + (["-X", "isolation.level=read_committed"]
               if read_committed else []),
            "kcat " + topic, stdout=subprocess.PIPE, stderr=self._err)
        self.points = []        # (arrival epoch s, commit epoch s)

    def run(self):
        for line in self.child.p.stdout:
            t = time.time()
            m = _TS_MS.search(line)
            if m:
                self.points.append((t, int(m.group(1)) / 1000.0))

    def stop(self):
        self.child.stop(5)
        self.join(5)
        self._err.close()


# ---------------------------------------------------------------------------
# Instructions per change of the Kafka sink, under callgrind.

# walcast's default linger.ms (lib/kafka/kafka.c) and how much slower
# walcastd runs under callgrind: librdkafka closes a batch on time, so at
# the real linger a batch under valgrind would hold a handful of messages
# instead of the ~60 per partition of the real rate.  The callgrind run
# sets linger.ms to their product by default, so that batches (and
# librdkafka's per-batch work: request, compression context, delivery
# report) have their real size.
DEFAULT_LINGER_MS = 20
VALGRIND_SLOWDOWN = 20

# The C library and the loader are not counted as themselves: their
# instructions (malloc, memcpy, system calls) go to whoever called them,
# walcast or librdkafka.
# "???" is code valgrind finds no object for (PLT stubs): also neutral.
# So is a malloc put in with LD_PRELOAD (see callgrind()'s env).
_NEUTRAL_OBJ = ("libc.so", "libc-", "ld-linux", "libpthread", "libm.so",
                "vgpreload", "???", "libmimalloc", "libjemalloc",
                "libtcmalloc")
# What librdkafka brings along: its compression codecs, and the SASL
# library it initializes when a producer starts.
_RDKAFKA_OBJ = ("librdkafka", "liblz4", "libzstd", "libsnappy", "libz.so",
                "libsasl2")
_CODEC_OBJ = ("liblz4", "libzstd", "libsnappy", "libz.so")

CALLGRIND_WORKLOADS = ("small", "big", "delete")
# a table of its own, so that the run leaves the bench's tables alone
_CG_TABLE = '"town6-govikon".kafka_cg'


def _cg_workload(cl, workload, changes, per):
    """(SQL run before the slot exists, SQL of the workload, changes,
    messages) for a callgrind run."""
    from .workloads import TICKET_COLS, ticket_values
    if workload == "small":
        ntx = max(1, changes // per)
        # per-2 inserts, an update, a delete and its tombstone
        return (None, "CALL walcast_bench.small(%d, %d)" % (ntx, per),
                ntx * per, ntx * (per + 1))
    cl.sql("CREATE TABLE IF NOT EXISTS %s (%s); TRUNCATE %s"
           % (_CG_TABLE, TICKET_COLS, _CG_TABLE))
    fill = "INSERT INTO %s SELECT %s FROM generate_series(1, %d) g" \
        % (_CG_TABLE, ticket_values("g"), changes)
    if workload == "big":
        return None, fill, changes, changes
    if workload == "delete":
        # one DELETE of every row: a delete and a tombstone each
        return fill, "DELETE FROM %s" % _CG_TABLE, changes, 2 * changes
    raise ValueError("callgrind workload %r: use one of %s"
                     % (workload, ", ".join(CALLGRIND_WORKLOADS)))


def _cg_object_kind(ob):
    base = os.path.basename(ob)
    if base.startswith(_RDKAFKA_OBJ):
        return "codec" if base.startswith(_CODEC_OBJ) else "librdkafka"
    return None


def parse_callgrind(path):
    """Reads a callgrind output file (Ir only).  Returns (total,
    exclusive, calls): exclusive maps (object, file, function) to its own
    instructions, calls maps (caller key, callee key) to the inclusive
    instructions of those calls."""
    names = {"ob": {}, "fl": {}, "fn": {}}
    alias = {"cob": "ob", "cfi": "fl", "cfl": "fl", "cfn": "fn", "fi": "fl",
             "fe": "fl"}
    excl, calls = {}, {}
    cur = {"ob": "", "fl": "", "fn": ""}
    callee = {}
    in_call = False
    total = None

    def name(kind, rest):
        rest = rest.strip()
        table = names[alias.get(kind, kind)]
        if rest.startswith("("):
            i = rest.index(")")
            n = int(rest[1:i])
            if rest[i + 1:].strip():
                table[n] = rest[i + 1:].strip()
            return table.get(n, "")
        return rest

    with open(path, errors="replace") as f:
        for line in f:
            c = line[:1]
            if c.isdigit() or c in "+-*":
                if not in_call:
                    parts = line.split()
                    if len(parts) > 1:
                        k = (cur["ob"], cur["fl"], cur["fn"])
                        excl[k] = excl.get(k, 0) + int(parts[1])
                    continue
                parts = line.split()
                ir = int(parts[1]) if len(parts) > 1 else 0
                key = ((cur["ob"], cur["fl"], cur["fn"]),
                       (callee.get("ob", cur["ob"]),
                        callee.get("fl", cur["fl"]), callee["fn"]))
                calls[key] = calls.get(key, 0) + ir
                in_call = False
                callee = {}
                continue
            if "=" not in line:
                continue
            kind, rest = line.split("=", 1)
            if kind in ("ob", "fl", "fn"):
                cur[kind] = name(kind, rest)
                continue
            if kind in ("fi", "fe"):
                name(kind, rest)   # inlined code: still the function's
                continue
            if kind in ("cob", "cfi", "cfl", "cfn"):
                callee[alias[kind]] = name(kind, rest)
                continue
            if kind == "calls":
                in_call = True
                continue
            if kind in ("summary", "totals"):
                total = int(rest.split()[0])
    if total is None:
        total = sum(excl.values())
    return total, excl, calls


def _is_neutral(key):
    return os.path.basename(key[0]).startswith(_NEUTRAL_OBJ)


def _is_sink_code(key):
    ob, fl, fn = key
    if _cg_object_kind(ob) or _is_neutral(key):
        return False
    if "/lib/kafka/" in fl:
        return True
    # a build without debug information: no file names, the functions'
    # names then (static ones may be inlined into these)
    return fl in ("", "???") and fn in _SINK_FNS


# The Kafka sink's functions by name, for builds without -g.
_SINK_FNS = {"on_insert", "on_update", "on_delete", "on_truncate",
             "on_begin", "on_commit", "on_events", "on_delivery", "on_log",
             "on_error", "send_change", "produce", "table_get",
             "begin_change", "txn_text", "make_headers", "held_flush",
             "serve", "txn_get", "txn_settle", "init", "close_state"}


def split_callgrind(path):
    """The instructions of a walcastd run with the Kafka sink, split:
    librdkafka (its object and its codecs, in all threads: producing,
    headers, batching, compression, the protocol, delivery reports),
    walcast's Kafka sink (lib/kafka: formatting, bookkeeping, with the
    walcast functions it calls, e.g. the JSON writers of lib/core, and
    the delivery report callback), the rest of walcastd (receive, decode,
    route, bus, checkpoint).  The C library's instructions (malloc,
    memcpy, system calls) go to whoever called it, through the call graph;
    what no one of those called (start-up) is "other"."""
    total, excl, calls = parse_callgrind(path)
    out_edges, in_ir = {}, {}
    for (a, b), ir in calls.items():
        out_edges.setdefault(a, []).append((b, ir))
        in_ir[b] = in_ir.get(b, 0) + ir
    # the share of a neutral function's inclusive cost that is callbacks
    # into walcast or librdkafka (qsort's comparator, start_thread's
    # thread function): not the caller's
    cb = {}
    for _ in range(4):
        for k in in_ir:
            if not _is_neutral(k):
                continue
            x = 0
            for b, ir in out_edges.get(k, []):
                x += ir * cb.get(b, 1.0 if not _is_neutral(b) else 0.0)
            cb[k] = min(1.0, x / in_ir[k]) if in_ir[k] else 0.0

    def self_cost(k):
        c = excl.get(k, 0)
        for b, ir in out_edges.get(k, []):
            if _is_neutral(b):
                c += ir * (1.0 - cb.get(b, 0.0))
        return c

    keys = set(excl) | {k for pair in calls for k in pair}
    rdk = codec = sink = rest = 0.0
    for k in keys:
        if _is_neutral(k):
            continue
        kind = _cg_object_kind(k[0])
        c = self_cost(k)
        if kind:
            rdk += c
            if kind == "codec":
                codec += c
        elif _is_sink_code(k):
            sink += c
            # the walcast code it calls (lib/core's writers, the host's
            # ack): the sink's work, counted in rest otherwise
            for b, ir in out_edges.get(k, []):
                if not (_is_neutral(b) or _cg_object_kind(b[0])
                        or _is_sink_code(b)):
                    sink += ir
                    rest -= ir
        else:
            rest += c
    return {"total": total, "librdkafka": rdk, "codec": codec,
            "sink": sink, "rest": rest,
            "other": total - rdk - sink - rest, "excl": excl}


def callgrind(ctx, rundir, workload="small", changes=50000, per=5,
              linger_ms=None, properties=None, env=None, timeout=1800):
    """Runs walcastd with the Kafka sink (to a fresh kafka_mock) under
    callgrind, every thread, on a fixed workload, and splits its
    instructions between walcast and librdkafka.

    ctx as bench/run makes it (cluster, dsn, walcastd, kafka_mock).
    workload: "small" (changes/per transactions of per changes: per-2
    inserts, an update, a delete), "big" (one transaction of `changes`
    inserts) or "delete" (one DELETE of `changes` rows, each a delete and
    a tombstone).  linger_ms: librdkafka's linger.ms under valgrind,
    default DEFAULT_LINGER_MS * VALGRIND_SLOWDOWN (see there).
    properties: more librdkafka properties for the sink (a dict of
    strings), e.g. {"compression.type": "none"}.  env: the environment
    of walcastd (None: this process's), e.g. with LD_PRELOAD of another
    malloc.

    The slot is created before the workload; walcastd is stopped when the
    slot's confirmed_flush_lsn reaches the end position (everything was
    delivered and acknowledged).  Raises RuntimeError when walcastd fails
    or does not get there within timeout seconds.  Returns a dict:
    workload, changes, messages, properties (those set for the run),
    seconds, total_ir, ir_per_change, per_change (instructions per change
    of "sink", "librdkafka", "codec" (part of librdkafka's), "rest",
    "other": see split_callgrind), parts (the same as a list of (label,
    instructions per change), for a table), top (the 25 functions with the
    most instructions of their own: (instructions, "object: function")),
    callgrind_out."""
    from .procs import Child, log
    cl = ctx.cluster
    slot = "cg_kafka_%s" % workload
    before, sql, nchanges, nmessages = _cg_workload(cl, workload, changes,
                                                    per)
    if before:
        cl.sql(before)
    cl.drop_slot(slot)
    cl.create_slot(slot)
    mock = None
    try:
        cl.sql(sql)
        end = cl.end_position()
        props = {"linger.ms": str(linger_ms if linger_ms is not None
                                  else DEFAULT_LINGER_MS * VALGRIND_SLOWDOWN)}
        props.update(properties or {})
        mock = Mock(ctx.kafka_mock, os.path.join(
            rundir, "kafka_mock.%s.stderr" % slot))
        cfg = os.path.join(rundir, "%s.yaml" % slot)
        lines = ["source:",
                 "  dsn: \"%s\"" % ctx.dsn,
                 "  slot: %s" % slot,
                 "  create_slot: false",
                 "  status_interval: 100ms",
                 "sinks:"] + sink_yaml(mock.bootstrap)
        lines += ["        %s: \"%s\"" % (k, v) for k, v in props.items()]
        lines += ["log:", "  level: info"]
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        cgout = os.path.join(rundir, "callgrind.%s.out" % slot)
        argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file="
                + cgout]
        argv += [ctx.walcastd, "-c", cfg]
        errpath = os.path.join(rundir, "callgrind.%s.stderr" % slot)
        with open(errpath, "wb") as errf:
            child = Child(argv, "callgrind walcastd kafka", stderr=errf,
                          env=env)
        t0 = time.monotonic()
        reached = False
        while child.running():
            if cl.slot_state(slot)[1] >= end:
                reached = True
                child.stop(120)
                break
            if time.monotonic() > t0 + timeout:
                child.stop(10)
                raise RuntimeError("callgrind walcastd (kafka, %s) did not "
                                   "finish in %d s" % (workload, timeout))
            child.wait(0.1)
        seconds = time.monotonic() - t0
        if child.status != 0 or not reached:
            # a profile of part of the workload would pass for a cheap run
            with open(errpath, errors="replace") as f:
                raise RuntimeError("callgrind walcastd (kafka) exited with "
                                   "%s before the end position:\n%s"
                                   % (child.status, f.read()[-3000:]))
    finally:
        if mock:
            mock.stop()
        cl.drop_slot(slot)
    s = split_callgrind(cgout)
    n = float(nchanges)
    parts = [("walcast: Kafka sink (lib/kafka and what it calls)",
              s["sink"] / n),
             ("librdkafka, all threads (with its codecs)",
              s["librdkafka"] / n),
             ("  of which compression codecs", s["codec"] / n),
             ("walcast: the rest (receive, decode, route, bus, checkpoint)",
              s["rest"] / n),
             ("other (start-up, the C library called by neither)",
              s["other"] / n)]
    top = sorted(((v, "%s: %s" % (os.path.basename(k[0]), k[2]))
                  for k, v in s["excl"].items()), reverse=True)[:25]
    log("callgrind kafka %s: %.0f instructions per change (sink %.0f, "
        "librdkafka %.0f)" % (workload, s["total"] / n, s["sink"] / n,
                              s["librdkafka"] / n))
    return {"workload": workload, "changes": nchanges,
            "messages": nmessages, "properties": props, "seconds": seconds,
            "total_ir": s["total"], "ir_per_change": s["total"] / n,
            "per_change": {k: s[k] / n for k in ("sink", "librdkafka",
                                                 "codec", "rest", "other")},
            "parts": parts, "top": top, "callgrind_out": cgout}
