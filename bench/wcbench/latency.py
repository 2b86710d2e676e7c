# SPDX-License-Identifier: MIT
"""Commit-to-acknowledge latency at a fixed offered rate.

The same paced workload (small transactions, generated inside the server)
runs twice: first with pg_recvlogical streaming to a file (the reference:
how soon the server delivers a change to any client), then with walcastd
and its file sink (fsync on).  Per change line of the output file:

  commit  the transaction's commit timestamp as PostgreSQL recorded it
          (GetCurrentTimestamp() when the commit record is written; the
          line's commit_time, or for pg_recvlogical the B line's
          timestamp), on this machine's realtime clock;
  written the end of the write(2) that completed the line in the file;
  acked   (walcastd) the end of the first fdatasync(2) on the file that
          began after that write: the file sink acknowledges a transaction
          right after that call returns (lib/filesink/plugin.c,
          sync_and_ack), and only then may walcastd confirm its position.

With the Kafka sink (when the build has tests/tools/kafka_mock and kcat
is installed) it runs a third time: walcastd to a fresh mock cluster, with
a kcat reader per topic; per message (tombstones aside): commit =
source.ts_ms of the Debezium envelope (milliseconds, truncated: up to 1 ms
too early), consumed = when the kcat reader's line arrived here.  That is
after the broker appended the message, which is when its producer
acknowledgement (acks=all, one broker) is sent.

walcastd's times come from strace (-ttt -T; only write and fdatasync are
traced, through seccomp-bpf, so the process stops only at those calls;
the file sink makes one write and one fdatasync per ~10 ms).  Without
strace, and always for pg_recvlogical (which makes two write calls per
message: tracing would slow it down), a thread polling the file's size
every millisecond records when each line appeared: "written" only, up to
~1 ms late."""

import calendar
import os
import re
import shutil
import threading
import time

from .cluster import lsn_str
from .consumers import STATUS_INTERVAL
from .procs import Child, children_of, log

_TRACE_RE = re.compile(
    r"^(?:\d+\s+)?(\d+\.\d+) (write|fdatasync|fsync)\((\d+)<([^>]*)>"
    r".*= (-?\d+)(?: \w+ \([^)]*\))? <(\d+\.\d+)>$")
# walcast: "commit_time":"2025-11-25T14:51:54.123456Z"
# wal2json: "timestamp":"2025-11-25 14:51:54.123456+00"
_TS_RE = re.compile(rb'"(?:commit_time|timestamp)":"(\d{4})-(\d\d)-(\d\d)'
                    rb'[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?'
                    rb'(Z|[+-]\d\d(?::?\d\d)?)"')


def _epoch(m):
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    t = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + \
        int((m.group(7) or b"").ljust(6, b"0")) / 1e6
    z = m.group(8)
    if z != b"Z":
        sign = -1 if z[:1] == b"-" else 1
        digits = z[1:].replace(b":", b"")
        t -= sign * (int(digits[:2]) * 3600 + int(digits[2:4] or b"0") * 60)
    return t


def percentile(sorted_vals, p):
    """Nearest-rank percentile of a sorted list."""
    if not sorted_vals:
        return None
    k = int(-(-p * len(sorted_vals) // 100)) - 1
    return sorted_vals[min(len(sorted_vals) - 1, max(0, k))]


def _dist(vals):
    vals = sorted(vals)
    if not vals:
        return None
    return {"n": len(vals), "p50": percentile(vals, 50),
            "p90": percentile(vals, 90), "p99": percentile(vals, 99),
            "p999": percentile(vals, 99.9), "max": vals[-1]}


class _Tailer(threading.Thread):
    """Fallback without strace: records (time, file size) every ~1 ms."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.points, self.stop = path, [], False

    def run(self):
        last = -1
        while not self.stop:
            try:
                n = os.path.getsize(self.path)
            except OSError:
                n = 0
            if n != last:
                self.points.append((time.time(), n))
                last = n
            time.sleep(0.001)


def _change_lines(path, kind):
    """(end offset, commit epoch) of every change line of the output (a
    snapshot's read lines are not streamed changes: left out)."""
    out, off, txn_time = [], 0, None
    with open(path, "rb") as f:
        for line in f:
            off += len(line)
            if kind == "walcast":
                if line.startswith(b'{"op":"read"'):
                    continue
                m = _TS_RE.search(line)
                if m:
                    out.append((off, _epoch(m)))
            elif line.startswith(b'{"action":"B"'):
                m = _TS_RE.search(line)
                txn_time = _epoch(m) if m else None
            elif line.startswith(b'{"action":"C"'):
                txn_time = None
            elif txn_time is not None:
                out.append((off, txn_time))
    return out


def _read_trace(trace, path):
    writes, syncs, pos = [], [], 0
    with open(trace, errors="replace") as f:
        for raw in f:
            m = _TRACE_RE.match(raw.strip())
            if not m or m.group(4) != path:
                continue
            t, call, ret, dur = float(m.group(1)), m.group(2), \
                int(m.group(5)), float(m.group(6))
            if call == "write":
                if ret > 0:
                    pos += ret
                    writes.append((t + dur, pos))
            else:
                syncs.append((t, t + dur))
    return writes, syncs


def _one(ctx, rundir, kind, rate, seconds, per, tag=None, extra_yaml="",
         load=None):
    """One latency run.  tag names its files and slot (default: kind);
    extra_yaml is added to walcastd's configuration; load, when given,
    replaces the paced CALL: load(gen, cfg, errpath) offers the changes
    on connection gen and returns None or (t0, t1), the epoch window of
    commits the figures are about."""
    cl = ctx.cluster
    tag = tag or kind
    slot = "lat_" + tag.replace("-", "_")
    cl.create_slot(slot)
    out = os.path.join(rundir, "latency.%s.out" % tag)
    trace = os.path.join(rundir, "latency.%s.strace" % tag)
    errpath = os.path.join(rundir, "latency.%s.stderr" % tag)
    window = None
    # pg_recvlogical makes two write(2) calls per message: tracing them
    # would slow it down, so it is always watched by polling the file
    use_strace = shutil.which("strace") is not None and not ctx.no_strace \
        and kind == "walcast"
    mock, readers = None, []
    if kind in ("kafka", "kafka-eos"):
        from . import kafka
        from .workloads import TENANTS
        eos = kind == "kafka-eos"
        mock = kafka.Mock(ctx.kafka_mock, errpath + ".mock")
        cfg = os.path.join(rundir, "latency.%s.yaml" % kind)
        with open(cfg, "w") as f:
            f.write("source:\n  dsn: \"%s\"\n  slot: %s\n"
                    "  create_slot: false\n  status_interval: %s\nsinks:\n"
                    % (ctx.dsn, slot, STATUS_INTERVAL)
                    + "\n".join(kafka.sink_yaml(mock.bootstrap,
                                                exactly_once=eos)) + "\n")
        argv = [ctx.walcastd, "-c", cfg]
        for t in TENANTS:
            topic = "%s.%s.tickets" % (kafka.PREFIX, t)
            mock.cmd("topic %s 1" % topic)
            # exactly once: what a read_committed consumer sees
            readers.append(kafka.Reader(mock.bootstrap, topic, os.path.join(
                rundir, "kcat.%s.%s.stderr" % (kind, t)),
                read_committed=eos))
        for r in readers:
            r.start()
    elif kind == "walcast":
        cfg = os.path.join(rundir, "latency.%s.yaml" % tag)
        with open(cfg, "w") as f:
            f.write("source:\n  dsn: \"%s\"\n  slot: %s\n"
                    "  create_slot: false\n  status_interval: %s\n"
                    "sinks:\n  - file:\n      path: \"%s\"\n"
                    "      fsync: true\n"
                    % (ctx.dsn, slot, STATUS_INTERVAL, out) + extra_yaml)
        argv = [ctx.walcastd, "-c", cfg]
    else:
        argv = [os.path.join(ctx.pgbin, "pg_recvlogical"), "-d", ctx.dsn,
                "-S", slot, "--start", "--no-loop", "-f", out]
        for k, v in ctx.w2j_options:
            argv += ["-o", "%s=%s" % (k, v)]
    if use_strace:
        argv = ["strace", "-f", "-qq", "--seccomp-bpf", "-ttt", "-T", "-y",
                "-s", "0", "-e", "trace=write,fdatasync,fsync",
                "-e", "signal=none", "-o", trace] + argv
    with open(errpath, "wb") as errf:
        child = Child(argv, "%s (latency)" % kind, stderr=errf)
    tailer = None
    gen_secs = None
    try:
        # streaming: the slot is active (both clients have started)
        deadline = time.monotonic() + 30
        while cl.slot_state(slot)[0] is None:
            if not child.running() or time.monotonic() > deadline:
                raise RuntimeError("%s did not start streaming:\n%s"
                                   % (kind, open(errpath, errors="replace")
                                      .read()))
            time.sleep(0.05)
        time.sleep(0.3)
        if not use_strace:
            tailer = _Tailer(out)
            tailer.start()
        gen = cl.connect()
        t0 = time.monotonic()
        if load:
            window = load(gen, cfg, errpath)
        else:
            gen.query("CALL walcast_bench.paced(%d, %f, %d)"
                      % (rate, seconds, per))
        gen_secs = time.monotonic() - t0
        gen.close()
        end = cl.end_position()
        deadline = time.monotonic() + 120
        if kind != "recv":
            while cl.slot_state(slot)[1] < end:
                if not child.running() or time.monotonic() > deadline:
                    raise RuntimeError("walcastd did not confirm the latency"
                                       " run (%s):\n" % kind + open(
                                           errpath, errors="replace").read())
                time.sleep(0.02)
        else:
            # pg_recvlogical writes each message at once: wait for the
            # server to have sent everything, then a little
            while True:
                rows = cl.sql("SELECT sent_lsn::text FROM pg_stat_replication"
                              " WHERE application_name = 'pg_recvlogical'")
                if rows and rows[0][0] and _lsn(rows[0][0]) >= end:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("pg_recvlogical latency run did not "
                                       "reach %s" % lsn_str(end))
                time.sleep(0.02)
            time.sleep(0.5)
        # the last messages reach the readers: until their count stays
        # the same for a second (10 s at most)
        last, stable = -1, time.monotonic()
        while readers and time.monotonic() - stable < 1.0 and \
                time.monotonic() < deadline + 10:
            n = sum(len(r.points) for r in readers)
            if n != last:
                last, stable = n, time.monotonic()
            time.sleep(0.1)
    finally:
        for r in readers:
            r.stop()
        if mock:
            mock.stop()
        # the client may be strace's child: signal it; strace follows it out
        pids = children_of(child.pid) if use_strace else [child.pid]
        for pid in pids:
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                pass
        if not child.wait(30):
            child.stop(5)
        if tailer:
            tailer.stop = True
            tailer.join()
        cl.drop_slot(slot)
    if kind in ("kafka", "kafka-eos"):
        vals = [(t - c) * 1000.0 for r in readers for t, c in r.points]
        return {"changes": len(vals), "gen_seconds": gen_secs,
                "achieved_rate": len(vals) / gen_secs if gen_secs else None,
                "consumed": _dist(vals)}
    lines = _change_lines(out, kind)
    if use_strace:
        writes, syncs = _read_trace(trace, out)
    else:
        writes, syncs = tailer.points, []
    written, acked = [], []
    wi = si = 0
    n_window = 0
    for end_off, commit in lines:
        while wi < len(writes) and writes[wi][1] < end_off:
            wi += 1
        if wi == len(writes):
            break
        if window and not window[0] <= commit <= window[1]:
            continue
        n_window += 1
        tw = writes[wi][0]
        written.append((tw - commit) * 1000.0)
        if syncs:
            while si < len(syncs) and syncs[si][0] < tw - 1e-6:
                si += 1
            if si < len(syncs):
                acked.append((syncs[si][1] - commit) * 1000.0)
    res = {"changes": len(lines), "gen_seconds": gen_secs,
           "achieved_rate": len(lines) / gen_secs if gen_secs else None,
           "written": _dist(written)}
    if kind == "walcast" and acked:
        res["acked"] = _dist(acked)
    if kind == "walcast" and syncs:
        res["fdatasync"] = _dist([(b - a) * 1000.0 for a, b in syncs])
    if window:
        res["window"] = window
        res["window_changes"] = n_window
    if not lines:
        log("latency (%s): no change lines in the output" % kind)
    return res


def _lsn(s):
    hi, lo = s.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def measure(ctx, rundir, rate, seconds, per):
    res = {"offered_rate": rate, "seconds": seconds, "per_txn": per,
           "method": ("strace for walcastd" if shutil.which("strace") and
                      not ctx.no_strace else "1 ms polling for walcastd") +
           ", 1 ms polling of the file for pg_recvlogical"}
    res["recv"] = _one(ctx, rundir, "recv", rate, seconds, per)
    res["walcast"] = _one(ctx, rundir, "walcast", rate, seconds, per)
    w = res["walcast"]
    for k in ("acked", "written", "fdatasync"):
        if k in w and w[k]:
            res[k] = w[k]
    res["changes"] = w["changes"]
    res["achieved_rate"] = w["achieved_rate"]
    if ctx.kafka_mock and shutil.which("kcat"):
        res["kafka"] = _one(ctx, rundir, "kafka", rate, seconds, per)
        if getattr(ctx, "kafka_eos", False):
            res["kafka_eos"] = _one(ctx, rundir, "kafka-eos", rate, seconds,
                                    per)
    elif ctx.kafka_mock:
        log("latency: no kcat, so no Kafka latency")
    return res
