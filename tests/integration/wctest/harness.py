# SPDX-License-Identifier: MIT
"""Integration-test harness for walcast.

Starts a throwaway PostgreSQL 15 cluster (wal2json available), writes walcast
configuration files, runs walcastd / walcast as subprocesses and reads their
output.  Python 3 standard library only.

Everything a test starts is registered and torn down at exit (also on
failure and on SIGTERM/SIGINT): daemon processes are killed by pid, the
cluster is stopped, the temporary directory removed unless WC_KEEP_TMP is set.

Environment: WALCASTD, WALCAST (binary paths), WC_TEST_DATA, WC_KEEP_TMP,
WC_PGBIN (PostgreSQL's binaries); ctest also sets WALCAST_BACKOFF_MIN_MS
and WALCAST_BACKOFF_MAX_MS, which walcastd reads (hidden: its replay
backoff in milliseconds, 1 s and 30 s by default; test_backoff.py).

A test file ends with h.main(test): `test_x.py` runs every case,
`--list` lists them, `--case ID` runs one (wctest/cases.py).
"""

import atexit
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request


from .base import *  # noqa: F401,F403
from .base import _cleanups, _procs, _run_cleanups  # noqa: F401
from .cluster import *  # noqa: F401,F403
from .cluster import _as_pg  # noqa: F401


EX_OK = 0
EX_SOFTWARE = 1
EX_UNAVAILABLE = 69
EX_CONFIG = 78

atexit.register(_run_cleanups)


def _on_signal(signum, frame):
    # turn SIGTERM (ctest timeout) / SIGINT into a normal exit so that
    # atexit handlers stop the cluster and kill daemons
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def trusted_tmpdir():
    """A temporary directory for plugins walcastd is to load: walcastd
    refuses code under a directory others can change (make_tmpdir()'s,
    under the sticky /tmp, owned by postgres), so this one is in the
    build tree of WALCASTD, owned by whoever runs the tests like every
    directory above it.  Removed at the end."""
    build = os.path.dirname(os.path.dirname(os.path.realpath(
        binary("walcastd"))))
    d = tempfile.mkdtemp(prefix="it-trusted-", dir=build)
    os.chmod(d, 0o755)
    _cleanups.append(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


class Notify:
    """A systemd notification socket (NOTIFY_SOCKET) at path.  Receives on
    a thread, so that each message is stamped when it arrives."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.05)
        self.msgs = []  # (monotonic time, text)
        self.lock = threading.Lock()
        self.done = False
        self.path = path
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        _cleanups.append(self.close)

    def start_walcastd(self, config, tmpdir, watchdog_usec=1000000):
        """start_walcastd() with NOTIFY_SOCKET set to this socket and the
        watchdog interval WATCHDOG_USEC, for that process only."""
        os.environ["NOTIFY_SOCKET"] = self.path
        os.environ["WATCHDOG_USEC"] = str(watchdog_usec)
        try:
            return start_walcastd(config, tmpdir)
        finally:
            del os.environ["NOTIFY_SOCKET"]
            del os.environ["WATCHDOG_USEC"]

    def _run(self):
        while not self.done:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.msgs.append((time.monotonic(), data.decode()))

    def close(self):
        self.done = True
        self.thread.join(2)
        self.sock.close()

    def drain(self):
        time.sleep(0.1)

    def wait_for(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.drain()
            for i, (_, m) in enumerate(self.msgs):
                if pred(m):
                    return i
        fail("no %s notification within %.0fs; got %r"
               % (what, timeout, [m for _, m in self.msgs]))

    def index(self, pred, start=0):
        for i in range(start, len(self.msgs)):
            if pred(self.msgs[i][1]):
                return i
        return -1

    def pings(self, since=0.0, until=None):
        """The times of the WATCHDOG=1 messages in [since, until)."""
        with self.lock:
            return [t for t, m in self.msgs if m == "WATCHDOG=1" and
                    t >= since and (until is None or t < until)]


class PgProxy:
    """A TCP proxy to a cluster, for faults of the wire: what the client
    sends goes through untouched; each message the server sends (type byte,
    length, body) goes through on_message(msg), which returns the bytes to
    pass on in its place (b"" to hold or drop it; several messages at
    once).  What one read of the server's socket yields is passed on in
    one send.  For a DSN with sslmode and gssencmode disabled (dsn()), so
    that the server's side is a plain run of typed messages."""

    def __init__(self, port, on_message):
        self.up_port = port
        self.on_message = on_message
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def dsn(self, user="postgres", dbname="postgres"):
        return ("host=127.0.0.1 port=%d dbname=%s user=%s sslmode=disable "
                "gssencmode=disable" % (self.port, dbname, user))

    def _accept(self):
        while True:
            try:
                cli, _ = self.lsock.accept()
            except OSError:
                return
            srv = socket.create_connection(("127.0.0.1", self.up_port))
            threading.Thread(target=self._to_server, args=(cli, srv),
                             daemon=True).start()
            threading.Thread(target=self._from_server, args=(srv, cli),
                             daemon=True).start()

    @staticmethod
    def _to_server(cli, srv):
        try:
            while True:
                data = cli.recv(65536)
                if not data:
                    break
                srv.sendall(data)
        except OSError:
            pass
        for x in (cli, srv):
            x.close()

    def _from_server(self, srv, cli):
        buf = b""
        try:
            while True:
                data = srv.recv(65536)
                if not data:
                    break
                buf += data
                out = b""
                while len(buf) >= 5:
                    n = 1 + int.from_bytes(buf[1:5], "big")
                    if len(buf) < n:
                        break
                    out += self.on_message(buf[:n])
                    buf = buf[n:]
                if out:
                    cli.sendall(out)
        except OSError:
            pass
        for x in (srv, cli):
            x.close()

    def close(self):
        self.lsock.close()


def vm_hwm_kb(pid):
    """Peak resident set size (VmHWM) of pid in kB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    fail("no VmHWM in /proc/%d/status" % pid)


def yq(v):
    """A YAML double-quoted scalar (JSON string syntax is valid YAML)."""
    return json.dumps(v, ensure_ascii=False)


# source.decoder of the configs write_config() writes: WALCAST_TEST_DECODER
DECODER = os.environ.get("WALCAST_TEST_DECODER", "wal2json")
# its output plugin, and the lines write_config() adds for it
PLUGIN = DECODER
CONFIG_EXTRA_LINES = 0 if DECODER == "wal2json" else 1


def create_slot_sql(cluster, name):
    """A slot made with SQL, as walcastd would make it for DECODER: under
    pgoutput its publication (the slot's name, FOR ALL TABLES) first."""
    if DECODER == "pgoutput":
        cluster.sql("DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_publication "
                    "WHERE pubname = '%s') THEN CREATE PUBLICATION \"%s\" "
                    "FOR ALL TABLES; END IF; END$$" % (name, name))
    cluster.sql("SELECT 1 FROM pg_create_logical_replication_slot('%s', '%s')"
                % (name, PLUGIN))


def write_config(path, dsn, slot, output=None, create_slot=True,
                 status_interval="1s", filt=None, extra=""):
    """Writes a walcast YAML config.  filt: {"schemas": {"include": [...],
    "exclude": [...]}, "tables": {...}, "ops": [...]}; output: file-sink
    path (None: no sinks section)."""
    lines = ["source:",
             "  dsn: " + yq(dsn),
             "  slot: " + yq(slot),
             "  create_slot: " + ("true" if create_slot else "false"),
             "  status_interval: " + status_interval]
    # the behaviour tests run with either decoder (ctest's pgoutput_*
    # entries set it)
    if DECODER != "wal2json":
        lines.append("  decoder: " + DECODER)
    if filt:
        lines.append("filter:")
        for key in ("schemas", "tables"):
            if key in filt:
                lines.append("  %s:" % key)
                for k2 in ("include", "exclude"):
                    if k2 in filt[key]:
                        lines.append("    %s: [%s]" % (
                            k2, ", ".join(yq(p) for p in filt[key][k2])))
        if "ops" in filt:
            lines.append("  ops: [%s]" % ", ".join(filt["ops"]))
    if output is not None:
        lines += ["sinks:", "  - file:", "      path: " + yq(output)]
    text = "\n".join(lines) + "\n" + extra
    with open(path, "w") as f:
        f.write(text)
    return path


# --------------------------------------------------------------------------
# processes

def binary(name):
    env = {"walcastd": "WALCASTD", "walcast": "WALCAST"}[name]
    p = os.environ.get(env)
    if not p:
        fail("environment variable %s (path of %s) is not set" % (env, name))
    if not os.access(p, os.X_OK):
        fail("%s=%s is not an executable" % (env, p))
    return p


class Proc:
    """A walcastd / walcast subprocess with stdout and stderr in files."""
    seq = 0

    def __init__(self, argv, tmpdir, name=None, stdout_path=None):
        Proc.seq += 1
        self.name = name or "%s-%d" % (os.path.basename(argv[0]), Proc.seq)
        self.argv = argv
        self.stderr_path = os.path.join(tmpdir, self.name + ".stderr")
        self.stdout_path = stdout_path or os.path.join(
            tmpdir, self.name + ".stdout")
        self._err = open(self.stderr_path, "wb")
        self._out = open(self.stdout_path, "wb")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                  stdout=self._out, stderr=self._err)
        self.pid = self.p.pid
        self.rc = None
        _procs.append(self)

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode(errors="replace")

    def poll(self):
        if self.rc is None:
            self.rc = self.p.poll()
        return self.rc

    def describe(self):
        return ("%s (pid %d, argv %s) exit=%s\n--- stderr:\n%s--- end stderr"
                % (self.name, self.pid, " ".join(self.argv), self.poll(),
                   self.stderr()))

    def wait_ready(self, word="streaming", timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            if word in self.stderr():
                return
            if self.poll() is not None:
                fail("%s exited before logging %r\n%s"
                     % (self.name, word, self.describe()))
            if time.monotonic() > deadline:
                fail("%s not ready (%r not logged) after %.0fs\n%s"
                     % (self.name, word, timeout, self.describe()))
            time.sleep(0.05)

    def wait(self, timeout=30.0):
        try:
            self.rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            d = self.describe()
            self.kill()
            fail("%s did not exit within %.0fs\n%s" % (self.name, timeout, d))
        self._close()
        return self.rc

    def send(self, sig):
        if self.poll() is None:
            os.kill(self.pid, sig)

    def stop(self, sig=signal.SIGTERM, expect=EX_OK, timeout=30.0):
        if self.poll() is not None:
            fail("%s had already exited before it was asked to stop\n%s"
                 % (self.name, self.describe()))
        self.send(sig)
        rc = self.wait(timeout)
        if expect is not None and rc != expect:
            fail("%s exited %s after %s, expected %s\n%s"
                 % (self.name, rc, signal.Signals(sig).name, expect,
                    self.describe()))
        return rc

    def kill(self):
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._close()

    def _close(self):
        for f in (self._err, self._out):
            if not f.closed:
                f.close()
        if self in _procs:
            _procs.remove(self)


def start_walcastd(config, tmpdir, name=None, ready=True, extra_args=()):
    p = Proc([binary("walcastd"), "-c", config] + list(extra_args), tmpdir,
             name=name)
    if ready:
        p.wait_ready()
    return p


def metrics(port):
    """walcastd's /metrics at port: {name: value} of the unlabelled
    integer walcast_* series."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(walcast_[a-z_]+) (\d+)$", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def undecodable_at(stderr):
    """The position walcastd's decode error names, or None."""
    m = re.search(r"could not decode wal2json message at (\S+):", stderr)
    return m.group(1) if m else None


def check_stops_again(config, tmpdir, at, name, timeout=60.0):
    """A message that does not decode is never skipped: walcastd started
    again exits 1 at the same position."""
    d = start_walcastd(config, tmpdir, name=name, ready=False)
    rc = d.wait(timeout=timeout)
    check(rc == 1 and undecodable_at(d.stderr()) == at,
          "started again: exit %s, not 1 at the message at %s\n%s"
          % (rc, at, d.describe()))


def run(argv, timeout=60.0, input=None):
    """Runs a short command; returns CompletedProcess with text output."""
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout,
                              input=input, stdin=None if input is not None
                              else subprocess.DEVNULL, text=True,
                              errors="replace")
    except subprocess.TimeoutExpired as e:
        fail("command timed out after %.0fs: %s\nstdout:%s\nstderr:%s"
             % (timeout, " ".join(argv), e.stdout, e.stderr))


def walcast(*args, timeout=60.0):
    return run([binary("walcast")] + list(args), timeout=timeout)


# --------------------------------------------------------------------------
# JSON lines

class RawNum(str):
    """A JSON number kept as its exact text (1.50 stays 1.50)."""

    def __eq__(self, other):
        return isinstance(other, RawNum) and str.__eq__(self, other)

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = str.__hash__

    def __repr__(self):
        return "#" + str.__str__(self)


def loads(text):
    return json.loads(text, parse_int=RawNum, parse_float=RawNum,
                      parse_constant=lambda c: fail("non-JSON constant %s" % c))


def read_jsonl(path, complete_only=False):
    """Parses a JSON-lines file.  A trailing line without a newline is an
    error unless complete_only (then it is ignored: still being written)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8")
    lines = text.split("\n")
    last = lines.pop()
    if last and not complete_only:
        fail("%s: last line has no newline: %r" % (path, last[:200]))
    out = []
    for i, line in enumerate(lines):
        try:
            out.append(loads(line))
        except ValueError as e:
            fail("%s:%d: not JSON (%s): %r" % (path, i + 1, e, line[:300]))
    return out


def count_lines(path):
    try:
        with open(path, "rb") as f:
            n = 0
            while True:
                b = f.read(1 << 20)
                if not b:
                    return n
                n += b.count(b"\n")
    except FileNotFoundError:
        return 0


class LineCounter:
    """Counts newlines of a growing file incrementally."""

    def __init__(self, path):
        self.path, self.off, self.n = path, 0, 0

    def __call__(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                while True:
                    b = f.read(1 << 22)
                    if not b:
                        break
                    self.off += len(b)
                    self.n += b.count(b"\n")
        except FileNotFoundError:
            pass
        return self.n


# --------------------------------------------------------------------------
# wal2json oracle: a second slot read with SQL, turned into the file-sink
# line format the daemon must produce

W2J_OPTIONS = ("'format-version', '2', 'include-transaction', '1', "
               "'include-lsn', '1', 'include-pk', '1', "
               "'include-timestamp', '1', 'include-type-oids', '1', "
               "'include-xids', '1'")


ORACLE_SETTINGS = ("SET DateStyle = ISO; SET IntervalStyle = postgres; "
                   "SET TimeZone = 'UTC'; SET extra_float_digits = 3; "
                   "SET bytea_output = hex; SET lc_monetary = 'C'; "
                   "SET search_path = ''; SET quote_all_identifiers = off;")


def oracle_create(cluster, slot):
    cluster.sql("SELECT pg_create_logical_replication_slot('%s', 'wal2json')"
                % slot)


def oracle_read(cluster, slot):
    """Expected file-sink objects (dicts in key order) for everything the
    oracle slot holds; 'commit_time' holds wal2json's timestamp text."""
    cluster.wait_flushed()
    # the output settings walcast pins on its connection
    rows = cluster.sql(ORACLE_SETTINGS +
                       "SELECT data FROM pg_logical_slot_peek_changes("
                       "'%s', NULL, NULL, %s)" % (slot, W2J_OPTIONS))
    out, txn, pending = [], None, []
    for (data,) in rows:
        m = loads(data)
        a = m["action"]
        if a == "B":
            txn, pending = m, []
        elif a == "C":
            for e in pending:
                e["commit_lsn"] = m["lsn"]
                e["end_lsn"] = m["nextlsn"]
                out.append(_order(e))
            txn, pending = None, []
        elif a in "IUDT":
            e = {"op": {"I": "insert", "U": "update", "D": "delete",
                        "T": "truncate"}[a],
                 "schema": m["schema"], "table": m["table"], "lsn": m["lsn"],
                 "xid": txn["xid"], "commit_time": txn["timestamp"]}
            for k in ("columns", "identity", "pk"):
                if k in m:
                    e[k] = m[k]
            pending.append(e)
        elif a == "M":
            e = {"op": "message", "lsn": m["lsn"]}
            if m["transactional"]:
                e["xid"] = txn["xid"]
                e["commit_time"] = txn["timestamp"]
            e.update(transactional=m["transactional"], prefix=m["prefix"],
                     content=m["content"])
            if m["transactional"]:
                pending.append(e)
            else:
                out.append(e)
        else:
            fail("oracle: unknown action %r" % a)
    return out


KEY_ORDER = {
    "insert": ["op", "schema", "table", "lsn", "xid", "commit_lsn", "end_lsn",
               "commit_time", "columns", "pk"],
    "update": ["op", "schema", "table", "lsn", "xid", "commit_lsn", "end_lsn",
               "commit_time", "columns", "identity", "pk"],
    "delete": ["op", "schema", "table", "lsn", "xid", "commit_lsn", "end_lsn",
               "commit_time", "identity", "pk"],
    "truncate": ["op", "schema", "table", "lsn", "xid", "commit_lsn",
                 "end_lsn", "commit_time"],
    "message": ["op", "lsn", "xid", "commit_lsn", "end_lsn", "commit_time",
                "transactional", "prefix", "content"],
}


def _order(e):
    return {k: e[k] for k in KEY_ORDER[e["op"]] if k in e}


# --------------------------------------------------------------------------
# timestamps

_TS_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)"
                    r"(?:\.(\d{1,6}))?(Z|[+-]\d\d(?::?\d\d)?(?::\d\d)?)?$")
COMMIT_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


def ts_micros(s):
    """Microseconds since the Unix epoch for a PostgreSQL or ISO-8601
    timestamp with zone ('2026-11-25 13:48:23.6489+05:30', '...Z')."""
    import calendar
    m = _TS_RE.match(s)
    if not m:
        fail("unparsable timestamp %r" % s)
    y, mo, d, h, mi, se = (int(x) for x in m.groups()[:6])
    frac = int((m.group(7) or "").ljust(6, "0"))
    secs = calendar.timegm((y, mo, d, h, mi, se, 0, 0, 0))
    z = m.group(8)
    if z and z != "Z":
        sign = -1 if z[0] == "-" else 1
        parts = z[1:].split(":") if ":" in z else [z[1:3], z[3:5] or "0"]
        off = int(parts[0]) * 3600 + (int(parts[1]) * 60 if len(parts) > 1
                                      and parts[1] else 0)
        if len(parts) > 2:
            off += int(parts[2])
        secs -= sign * off
    return secs * 1000000 + frac


# --------------------------------------------------------------------------
# comparisons

def mark_last(want, cut=False):
    """The file sink's lines for the changes in want (what one sink gets,
    in order): the last line of each transaction, and each message outside
    one, ends with "last": true (docs/file-format.md).  cut: the output
    stopped before the commit of the last transaction (walcast tail
    --limit), whose last line is then not marked."""
    out = []
    for i, w in enumerate(want):
        nxt = want[i + 1] if i + 1 < len(want) else None
        end = w.get("end_lsn")
        if nxt is None and cut and end is not None:
            out.append(w)
            continue
        if end is None or nxt is None or nxt.get("end_lsn") != end:
            w = dict(w)
            w["last"] = True
        out.append(w)
    return out


def diff_changes(got, want, label="output", limit=25, cut=False):
    """Compares lists of change objects exactly (keys, key order, values;
    commit_time as an instant in the spec's format), the file sink's lines
    with the changes in want (mark_last).  Returns a list of problems
    (empty when equal)."""
    probs = []
    want = mark_last(want, cut)
    for i in range(max(len(got), len(want))):
        if len(probs) >= limit:
            probs.append("%s: ... (more differences not shown)" % label)
            break
        if i >= len(got):
            probs.append("%s: missing line %d (and %d more): %s"
                         % (label, i + 1, len(want) - i - 1, _short(want[i])))
            break
        if i >= len(want):
            probs.append("%s: extra line %d (and %d more): %s"
                         % (label, i + 1, len(got) - i - 1, _short(got[i])))
            break
        g, w = wal2json_view(got[i]), want[i]
        bad = []
        if list(g.keys()) != list(w.keys()):
            bad.append("keys %s, expected %s" % (list(g.keys()),
                                                 list(w.keys())))
        for k in w:
            if k not in g:
                continue
            if k == "commit_time":
                gv = g[k]
                if not isinstance(gv, str) or not COMMIT_TIME_RE.match(gv):
                    bad.append("commit_time %r is not "
                               "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" % (gv,))
                elif ts_micros(gv) != ts_micros(w[k]):
                    bad.append("commit_time %s, wal2json said %s"
                               % (gv, w[k]))
            elif g[k] != w[k] or type(g[k]) != type(w[k]):
                bad.append(_describe(k, g[k], w[k]))
        if bad:
            probs.append("%s line %d (%s %s.%s lsn %s): %s"
                         % (label, i + 1, w.get("op"), w.get("schema"),
                            w.get("table"), w.get("lsn"), "; ".join(bad)))
    return probs


NUMBER_OIDS = {"20", "21", "23", "26", "700", "701", "1700"}


def wal2json_view(e):
    """A change as wal2json 2.5 would have sent it, for comparisons with
    the wal2json oracle: under pgoutput, the documented difference undone
    (a number column's NaN, Infinity, -Infinity, which pgoutput keeps as
    strings and wal2json 2.5 sends as null; docs/file-format.md).  The
    tests check those values against the database themselves."""
    if DECODER != "pgoutput":
        return e
    out = dict(e)
    for k in ("columns", "identity"):
        if isinstance(e.get(k), list):
            out[k] = [dict(c, value=None)
                      if isinstance(c, dict) and c.get("value") in
                      ("NaN", "Infinity", "-Infinity") and
                      str(c.get("typeoid")) in NUMBER_OIDS else c
                      for c in e[k]]
    return out


def _describe(k, g, w):
    """One field's difference; column lists are compared column by column."""
    if isinstance(g, list) and isinstance(w, list) and len(g) == len(w) \
            and all(isinstance(x, dict) for x in g + w):
        parts = []
        for i, (a, b) in enumerate(zip(g, w)):
            for f in sorted(set(a) | set(b)):
                if a.get(f, "<absent>") != b.get(f, "<absent>") or \
                        type(a.get(f)) != type(b.get(f)):
                    parts.append("%s[%d] (%s).%s = %s, expected %s"
                                 % (k, i, b.get("name"), f,
                                    _short(a.get(f, "<absent>"), 200),
                                    _short(b.get(f, "<absent>"), 200)))
            if list(a) != list(b) and set(a) == set(b):
                parts.append("%s[%d] key order %s, expected %s"
                             % (k, i, list(a), list(b)))
        if parts:
            return "; ".join(parts)
    return "%s = %s, expected %s" % (k, _short(g, 300), _short(w, 300))


def _short(v, n=400):
    s = repr(v)
    return s if len(s) <= n else s[:n] + "..."


# --------------------------------------------------------------------------
# running a test file

from .cases import EX_SKIP, Cases, case_id, list_cases  # noqa: E402,F401
from . import cases as _cases  # noqa: E402


def main(fn):
    """Entry point of a test file: fn() raises TestFailure on failure or
    returns an exit status.  Arguments: none (every case), --list (the
    case ids, see wctest.cases) or --case ID (that case only)."""
    args = sys.argv[1:]
    if args == ["--list"]:
        for cid, _ in list_cases(sys.argv[0]):
            print(cid)
        sys.exit(0)
    if len(args) == 2 and args[0] == "--case":
        ids = [cid for cid, _ in list_cases(sys.argv[0])]
        if args[1] not in ids:
            print("%s: no case %r; --list lists them: %s"
                  % (sys.argv[0], args[1], " ".join(ids) or "(none)"),
                  file=sys.stderr)
            sys.exit(2)
        _cases.select(args[1])
        log("case", args[1], "only")
    elif args:
        print("usage: %s [--list | --case ID]" % sys.argv[0],
              file=sys.stderr)
        sys.exit(2)
    t0 = time.monotonic()
    try:
        rc = fn() or 0
    except TestFailure as e:
        log("FAIL:", e)
        rc = 1
    except SystemExit as e:
        log("interrupted")
        rc = e.code if isinstance(e.code, int) else 1
    except Exception:
        traceback.print_exc()
        rc = 1
    finally:
        _run_cleanups()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    rc_ = resource.getrusage(resource.RUSAGE_CHILDREN)
    log("%s %s in %.1fs (CPU: the test %.1fs, its children %.1fs)"
        % (os.path.basename(sys.argv[0]),
           "passed" if rc == 0 else "FAILED" if rc != EX_SKIP else "skipped",
           time.monotonic() - t0, ru.ru_utime + ru.ru_stime,
           rc_.ru_utime + rc_.ru_stime))
    sys.exit(rc)


# --------------------------------------------------------------------------
# chaos tests (test_chaos_*.py): a multi-tenant workload whose committed
# changes can be told from the database alone, the faults, and the
# comparison of what a sink delivered with what committed

CHAOS_SCHEMAS = ("t1-acme", "t2-beta", "t3-gamma", "t4-delta")
CHAOS_SCHEMA_GLOB = "t?-*"


def chaos_seed():
    """The random seed of a chaos test: WC_CHAOS_SEED, or a fresh one; it
    is logged so that a failing run can be repeated."""
    import random
    s = os.environ.get("WC_CHAOS_SEED")
    seed = int(s) if s else int.from_bytes(os.urandom(4), "big")
    log("random seed %d (set WC_CHAOS_SEED=%d to repeat)" % (seed, seed))
    return random.Random(seed)


def chaos_batch_changes(n):
    """Changes of one workload transaction of n rows (see ChaosWorkload)."""
    return n + n // 2 + n // 4 + n // 4 + 1


class ChaosWorkload:
    """Writes changes to the tenant schemas CHAOS_SCHEMAS from one client
    connection (psql) per schema, in many smallish transactions, in a
    background thread each.

    Transaction ("batch") b of schema s with n rows (base = 10000 * b):

        INSERT   items ids base+1 .. base+n            ver 0
        UPDATE   items ver = ver + 1, ids base+1 .. base+n/2      -> ver 1
        UPDATE   items ver = ver + 1, ids base+1 .. base+n/4      -> ver 2
        DELETE   items ids base+n-n/4+1 .. base+n
        UPDATE   counters ver = ver + 1 WHERE id = 1   (one row per schema,
                 so its k-th committed batch writes ver k)
        INSERT   chaos.txlog (batch, schema, n)

    Every change is identified by (schema, table, op, id, ver) — ver None
    for a delete.  chaos.txlog commits with its batch, so the expected set
    is computed from what the database says committed, whatever the
    client saw; the row counts and counters are checked against it too.
    The chaos schema itself is not a tenant: configs include only
    CHAOS_SCHEMA_GLOB."""

    def __init__(self, cluster, rng, schemas=CHAOS_SCHEMAS, min_rows=8,
                 max_rows=120, big_every=60, big_rows=3000):
        self.c = cluster
        self.rng = rng
        self.schemas = schemas
        self.min_rows, self.max_rows = min_rows, max_rows
        self.big_every, self.big_rows = big_every, big_rows
        self.threads = []
        self.stop_ev = None
        self.attempted = 0        # changes in scripts psql ran to the end
        self.failures = []        # (schema, error text) of failed scripts
        self.next_batch = 1
        self._lock = None

    def kafka_topics(self, mock, partitions, prefix="walcast"):
        """Creates the topics of the workload's tables on the mock cluster
        (PREFIX.SCHEMA.TABLE, `partitions` each); returns their names."""
        topics = ["%s.%s.%s" % (prefix, s, t) for s in self.schemas
                  for t in ("items", "counters")]
        for t in topics:
            mock.cmd("topic %s %d" % (t, partitions))
        return topics

    def setup(self):
        ddl = ["CREATE SCHEMA IF NOT EXISTS chaos;",
               "CREATE TABLE IF NOT EXISTS chaos.txlog (batch bigint "
               "PRIMARY KEY, schema text NOT NULL, n int NOT NULL);"]
        for s in self.schemas:
            ddl += ['CREATE SCHEMA "%s";' % s,
                    'CREATE TABLE "%s".items (id bigint PRIMARY KEY, '
                    'ver int NOT NULL, payload text);' % s,
                    'CREATE TABLE "%s".counters (id int PRIMARY KEY, '
                    'ver bigint NOT NULL);' % s,
                    'INSERT INTO "%s".counters VALUES (1, 0);' % s]
        self.c.sql("\n".join(ddl))

    def _batch_sql(self, s, b, n):
        base = 10000 * b
        q = '"%s"' % s
        return (
            "BEGIN;"
            "INSERT INTO {q}.items SELECT g, 0, 'b{b}-' || g FROM "
            "generate_series({a}, {z}) g;"
            "UPDATE {q}.items SET ver = ver + 1 WHERE id BETWEEN {a} AND {h};"
            "UPDATE {q}.items SET ver = ver + 1 WHERE id BETWEEN {a} AND {f};"
            "DELETE FROM {q}.items WHERE id BETWEEN {d} AND {z};"
            "UPDATE {q}.counters SET ver = ver + 1 WHERE id = 1;"
            "INSERT INTO chaos.txlog VALUES ({b}, '{s}', {n});"
            "COMMIT;\n").format(q=q, s=s, b=b, n=n, a=base + 1, z=base + n,
                                h=base + n // 2, f=base + n // 4,
                                d=base + n - n // 4 + 1)

    def _rows(self, rng):
        if self.big_every and rng.randrange(self.big_every) == 0:
            return self.big_rows
        return rng.randint(self.min_rows, self.max_rows)

    def start(self, changes, seconds=None, chunk=8):
        """Starts writing about `changes` changes, spread over `seconds`
        (None: as fast as the server takes them)."""
        import random
        import threading
        self._lock = threading.Lock()
        self.stop_ev = threading.Event()
        share = changes // len(self.schemas)
        for i, s in enumerate(self.schemas):
            rng = random.Random(self.rng.random())
            t = threading.Thread(target=self._writer,
                                 args=(s, share, seconds, chunk, rng),
                                 daemon=True, name="writer-" + s)
            self.threads.append(t)
        self.t0 = time.monotonic()
        for t in self.threads:
            t.start()

    def _take_batch(self):
        with self._lock:
            b = self.next_batch
            self.next_batch += 1
            return b

    def _writer(self, s, share, seconds, chunk, rng):
        done = 0
        while done < share and not self.stop_ev.is_set():
            script, planned = [], 0
            for _ in range(chunk):
                n = self._rows(rng)
                script.append(self._batch_sql(s, self._take_batch(), n))
                planned += chaos_batch_changes(n)
                if done + planned >= share:
                    break
            r = self.c.sql("".join(script), check=False)
            if r is None:
                # the server went away (or restarts): what committed is in
                # chaos.txlog; go on with new batch numbers once it is back
                with self._lock:
                    self.failures.append(s)
                self.stop_ev.wait(0.5)
                continue
            done += planned
            with self._lock:
                self.attempted += planned
            if seconds:
                ahead = self.t0 + seconds * done / share - time.monotonic()
                if ahead > 0:
                    self.stop_ev.wait(ahead)

    def running(self):
        return any(t.is_alive() for t in self.threads)

    def progress(self):
        with self._lock:
            return self.attempted

    def wait(self, timeout=600):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                self.stop_ev.set()
                fail("the workload did not finish within %.0fs" % timeout)
        log("workload: %d changes in scripts that completed, %d failed "
            "scripts, in %.1fs" % (self.attempted, len(self.failures),
                                   time.monotonic() - self.t0))

    def stop(self):
        if self.stop_ev:
            self.stop_ev.set()
        for t in self.threads:
            t.join(60)

    def expected(self):
        """The set of change ids that committed, from the database; checks
        that the tables agree with chaos.txlog."""
        rows = self.c.sql_rows("SELECT schema, batch, n FROM chaos.txlog", 3)
        exp = set()
        batches, alive = {}, {}
        for s, b, n in rows:
            b, n = int(b), int(n)
            base = 10000 * b
            for i in range(base + 1, base + n + 1):
                exp.add((s, "items", "I", i, 0))
            for i in range(base + 1, base + n // 2 + 1):
                exp.add((s, "items", "U", i, 1))
            for i in range(base + 1, base + n // 4 + 1):
                exp.add((s, "items", "U", i, 2))
            for i in range(base + n - n // 4 + 1, base + n + 1):
                exp.add((s, "items", "D", i, None))
            batches[s] = batches.get(s, 0) + 1
            alive[s] = alive.get(s, 0) + n - n // 4
        for s in self.schemas:
            ver, cnt = self.c.sql_rows(
                'SELECT (SELECT ver FROM "%s".counters WHERE id = 1)::text, '
                '(SELECT count(*) FROM "%s".items)::text' % (s, s), 2)[0]
            check(int(ver) == batches.get(s, 0),
                  "%s.counters is at %s, but chaos.txlog has %d batches"
                  % (s, ver, batches.get(s, 0)))
            check(int(cnt) == alive.get(s, 0),
                  "%s.items has %s rows, chaos.txlog says %d"
                  % (s, cnt, alive.get(s, 0)))
            for v in range(1, int(ver) + 1):
                exp.add((s, "counters", "U", 1, v))
        return exp


def _row_of(cols):
    if isinstance(cols, dict):
        return cols
    return {c["name"]: c.get("value") for c in cols or []}


def chaos_change_id(schema, table, op, row):
    """(schema, table, op, id, ver) of a change; op is I, U or D."""
    i = row.get("id")
    i = int(i) if i is not None else None
    if op == "D":
        return (schema, table, op, i, None)
    v = row.get("ver")
    return (schema, table, op, i, int(v) if v is not None else None)


_OPS = {"insert": "I", "update": "U", "delete": "D"}


def chaos_read_lines(path, kind_key, whole_txns=False):
    """Change ids of a JSON-lines output, in file order: the file sink
    (kind_key "op"), the jsonl plugin ("signal") or the recorder ("kind").
    Only insert, update and delete lines of tenant schemas count (the
    jsonl plugin's bulk_delete lines repeat its delete lines).  A partial
    last line (a crash) is ignored.  whole_txns (the recorder with
    `position`): the lines of a transaction count only when its commit
    line (not failed) follows them, as such a sink keeps a transaction
    only whole."""
    out = []
    held, held_id = [], None
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return out
    with f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            e = json.loads(raw)
            if whole_txns:
                k = e.get(kind_key)
                if k == "commit":
                    if not e.get("failed") and e.get("txn_id") == held_id:
                        out.extend(held)
                    held, held_id = [], None
                    continue
                if k == "begin" or e.get("txn_id") != held_id:
                    held, held_id = [], e.get("txn_id")
            op = _OPS.get(e.get(kind_key))
            if op is None or e.get("schema") == "chaos":
                continue
            if op == "D":
                if kind_key == "kind":    # recorder: key values
                    row = {"id": e["key"][0]}
                else:
                    row = _row_of(e.get("identity"))
            else:
                row = _row_of(e.get("columns"))
            (held if whole_txns else out).append(
                chaos_change_id(e["schema"], e["table"], op, row))
    return out


def chaos_result(test, faults, expected, delivered, seconds, extra=None,
                 exactly_once=False):
    """Compares delivered change ids (with repeats) with the expected set,
    prints the one result line

        CHAOS {"test":..., "faults":..., "written":N, "delivered":N,
               "duplicates":N, "lost":N, "unexpected":N, "seconds":N}

    and fails when a committed change is missing (or something that never
    committed was delivered), and with exactly_once (a sink that keeps a
    position) when any change was delivered twice."""
    import collections
    cnt = collections.Counter(delivered)
    distinct = set(cnt)
    lost = expected - distinct
    unexpected = distinct - expected
    res = {"test": test, "faults": faults, "written": len(expected),
           "delivered": len(delivered),
           "guarantee": "exactly once" if exactly_once else "at least once",
           "duplicates": len(delivered) - len(distinct),
           "lost": len(lost), "unexpected": len(unexpected),
           "seconds": round(seconds, 1)}
    if extra:
        res.update(extra)
    print("CHAOS " + json.dumps(res, separators=(",", ":")), flush=True)
    if lost:
        fail("%d committed changes were not delivered, e.g. %s"
             % (len(lost), sorted(lost, key=repr)[:5]))
    if unexpected:
        fail("%d delivered changes never committed, e.g. %s"
             % (len(unexpected), sorted(unexpected, key=repr)[:5]))
    if exactly_once and res["duplicates"]:
        dup = [k for k, n in cnt.items() if n > 1]
        fail("%d changes were delivered more than once to a sink that keeps "
             "a position, e.g. %s" % (res["duplicates"],
                                      sorted(dup, key=repr)[:5]))
    return res


def chaos_wait_confirmed(c, slot, target, procs=(), timeout=300,
                         what=None):
    """Waits until the slot's confirmed_flush_lsn reaches target (an int),
    failing early if one of procs exits."""
    def done():
        for p in procs:
            if p.poll() is not None:
                fail("%s exited\n%s" % (p.name, p.describe()))
        s = c.slot(slot)
        return s and s["confirmed_flush_lsn"] and \
            lsn_int(s["confirmed_flush_lsn"]) >= target
    wait_until(done, timeout=timeout, interval=0.25,
               what=what or "slot %s to confirm %s" % (slot,
                                                        lsn_str(target)))


def chaos_wait_slot_free(c, slot, timeout=30):
    """After a crash of walcastd, the walsender notices the closed socket
    and releases the slot; systemd's RestartSec gives it that time."""
    def free():
        s = c.slot(slot)
        return s is None or s["active"] == "false"
    wait_until(free, timeout=timeout, interval=0.1,
               what="slot %s to be released" % slot)


def chaos_start_walcastd(cfg, tmpdir, name, attempts=5):
    """Starts walcastd as systemd would (Restart=on-failure): a start that
    fails, e.g. because the server is still restarting or the previous
    walsender still holds the slot, is tried again after a second."""
    for i in range(attempts):
        p = start_walcastd(cfg, tmpdir, name="%s-%d" % (name, i)
                           if i else name, ready=False)
        try:
            p.wait_ready(timeout=60)
            return p
        except TestFailure:
            if p.poll() is None or i == attempts - 1:
                raise
            log("%s exited %s at start (%s); starting it again" % (
                p.name, p.poll(), p.stderr().strip().splitlines()[-1:]))
            time.sleep(1)


# --------------------------------------------------------------------------
# the mock Kafka cluster and reading topics back (for the chaos tests;
# test_kafka.py has its own)

class KafkaMock:
    """tests/tools/kafka_mock as a process: bootstrap servers from its
    first line, commands on its stdin, one answer line each.  Stopped by
    its own pid at exit."""

    def __init__(self, tmpdir, brokers=3):
        path = os.environ.get("WC_KAFKA_MOCK")
        if not path:
            fail("WC_KAFKA_MOCK is not set (the kafka_mock target is not "
                 "built)")
        self.errpath = os.path.join(tmpdir, "kafka_mock-%d.stderr"
                                    % time.monotonic_ns())
        self._err = open(self.errpath, "wb")
        self.p = subprocess.Popen([path, str(brokers)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self._err)
        _cleanups.append(self.stop)
        self.bootstrap = self._line(10)
        check("127.0.0.1:" in self.bootstrap,
              "kafka_mock printed %r, not its servers" % self.bootstrap)

    def _line(self, timeout):
        import select
        deadline = time.monotonic() + timeout
        buf = b""
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.p.stdout], [], [],
                                              left)[0]:
                fail("kafka_mock did not answer within %ds" % timeout)
            b = os.read(self.p.stdout.fileno(), 1)
            if not b:
                fail("kafka_mock exited: %s" % self.stderr())
            buf += b
        return buf.decode().strip()

    def stderr(self):
        with open(self.errpath, "rb") as f:
            return f.read().decode(errors="replace")[-2000:]

    def cmd(self, line):
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()
        r = self._line(10)
        check(r == "ok", "kafka_mock %r: %s" % (line, r))

    def stop(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.close()   # EOF: a clean stop
                self.p.wait(timeout=15)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self.p.kill()
                self.p.wait()
        if not self._err.closed:
            self._err.close()


def kcat_path():
    p = shutil.which("kcat")
    if not p:
        fail("kcat is not installed (Debian package kcat)")
    return p


def kafka_sink_yaml(boot, props=None, topic=None):
    """YAML text of one `- kafka:` sink item."""
    lines = ["  - kafka:"]
    if topic is not None:
        lines.append("      topic: " + yq(topic))
    # back quickly after a broker outage
    allp = {"linger.ms": 5, "reconnect.backoff.max.ms": 500}
    allp.update(props or {})
    lines += ["      properties:",
              "        bootstrap.servers: " + yq(boot)]
    for k, v in allp.items():
        lines.append("        %s: %s" % (k, v))
    return "\n".join(lines) + "\n"


def kafka_change_ids(boot, topics, prefix="walcast", timeout=180):
    """Change ids of every record in topics (kcat, one process per topic,
    all at once), in partition order; tombstones are not changes.  A
    topic is PREFIX.SCHEMA.TABLE."""
    procs = []
    for t in topics:
        argv = [kcat_path(), "-b", boot, "-C", "-t", t, "-o", "beginning",
                "-e", "-q", "-f", "%s\\n"]
        procs.append((t, subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)))
    ops = {"c": "I", "u": "U", "d": "D"}
    out = []
    for t, p in procs:
        try:
            stdout, stderr = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for _, q in procs:
                q.kill()
                q.wait()
            fail("kcat -C %s did not finish in %ds" % (t, timeout))
        check(p.returncode == 0, "kcat -C %s failed (%d): %s"
              % (t, p.returncode, stderr.decode(errors="replace")[-2000:]))
        schema, table = t[len(prefix) + 1:].rsplit(".", 1)
        for line in stdout.split(b"\n"):
            if not line or line == b"NULL" or line == b"null":
                continue
            v = json.loads(line)
            if v is None:
                continue
            op = ops[v["op"]]
            row = v["before"] if op == "D" else v["after"]
            out.append(chaos_change_id(schema, table, op, row))
    return out


def chaos_kill9_run(c, rng, cfg, slot, workload, progress, kills=5,
                    changes=200000, write_seconds=None, name="walcastd"):
    """The kill -9 chaos: starts walcastd, starts the workload, and kills
    walcastd with SIGKILL `kills` times at random moments (each after it
    has made some progress since its start, so that every kill lands
    mid-stream), starting it again after each as systemd would; then
    lets the last one confirm everything and stops it.  progress() counts
    what the sink has so far (lines, records).  Returns (seconds, number
    of kills that left unconfirmed changes behind)."""
    t0 = time.monotonic()
    d = chaos_start_walcastd(cfg, c.tmp, name)
    workload.start(changes, seconds=write_seconds)
    mid = 0
    for k in range(kills):
        # every run confirms something before its kill (so the test moves
        # forward), then dies at a random moment while changes are in
        # flight
        conf0 = lsn_int(c.slot(slot)["confirmed_flush_lsn"])
        base = progress()

        def moved():
            check(d.poll() is None, "%s exited\n%s" % (d.name, d.describe()))
            conf = lsn_int(c.slot(slot)["confirmed_flush_lsn"])
            if conf > conf0 and progress() > base:
                return True
            # on a loaded machine the workload may end before the last
            # kills: once all of it is confirmed nothing is left to move,
            # and the remaining kills land on an idle stream
            if workload.running():
                return False
            if moved.end is None:
                moved.end = c.wait_flushed()
            return conf >= moved.end
        moved.end = None
        wait_until(moved, timeout=120, interval=0.1,
                   what="walcastd %s to confirm something" % d.name)
        time.sleep(rng.uniform(0.0, 1.5))
        check(d.poll() is None, "%s exited\n%s" % (d.name, d.describe()))
        s = c.slot(slot)
        d.kill()
        conf = lsn_int(s["confirmed_flush_lsn"])
        behind = lsn_int(c.current_lsn()) > conf
        mid += 1 if behind else 0
        log("kill -9 #%d of %s after %.1fs: slot confirmed %s, %s; workload "
            "at %d changes" % (k + 1, d.name, time.monotonic() - t0,
                               lsn_str(conf), "changes in flight"
                               if behind else "nothing in flight",
                               workload.progress()))
        chaos_wait_slot_free(c, slot)
        d = chaos_start_walcastd(cfg, c.tmp, "%s-%d" % (name, k + 2))
    workload.wait()
    target = c.wait_flushed()
    chaos_wait_confirmed(c, slot, target, [d])
    d.stop()
    return time.monotonic() - t0, mid


def recorder_sink_yaml(config, path=None):
    """YAML text of one `- plugin:` sink item loading tests/recorder."""
    so = path or os.environ.get("WC_RECORDER_SO")
    if not so:
        fail("WC_RECORDER_SO is not set (the recorder plugin target is not "
             "built)")
    lines = ["  - plugin:", "      path: " + yq(so), "      config:"]
    for k, v in config.items():
        lines.append("        %s: %s" % (k, yq(str(v))))
    return "\n".join(lines) + "\n"
