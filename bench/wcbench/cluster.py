# SPDX-License-Identifier: MIT
"""A throwaway PostgreSQL 15 cluster with wal2json for the benchmark."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from .pgwire import PgConn, PgError
from .procs import at_cleanup, log

PGBIN = os.environ.get("WC_PGBIN", "/usr/lib/postgresql/15/bin")
IS_ROOT = os.geteuid() == 0

# fsync off: a throwaway cluster (the consumers read WAL, not data files).
# synchronous_commit on: a commit's WAL is flushed at once, so logical
# decoding (which reads flushed WAL only) sees it at once -- the latency
# measurement needs that; with fsync off it costs a write(2) per commit.
CONF = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "on",
    "full_page_writes": "off",
    "wal_level": "logical",
    "max_replication_slots": "64",
    "max_wal_senders": "10",
    "output_plugin_libraries": "pgoutput, test_decoding, wal2json",
    "shared_buffers": "256MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "30min",
    "autovacuum": "off",          # no background WAL between workloads
    "log_min_messages": "warning",
    "log_checkpoints": "off",
}


def lsn_int(s):
    hi, lo = s.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def lsn_str(v):
    return "%X/%X" % (v >> 32, v & 0xFFFFFFFF)


def as_postgres(argv):
    return ["runuser", "-u", "postgres", "--"] + argv if IS_ROOT else argv


def make_tmpdir(keep):
    d = tempfile.mkdtemp(prefix="walcast-bench-")
    os.chmod(d, 0o755)
    if IS_ROOT:
        shutil.chown(d, "postgres", "postgres")

    def rm():
        if keep:
            log("kept", d)
        else:
            shutil.rmtree(d, ignore_errors=True)
    at_cleanup(rm)
    return d


def free_port():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class Cluster:
    def __init__(self, tmp, slots=64):
        self.tmp = tmp
        self.max_slots = max(16, slots)
        self.datadir = os.path.join(tmp, "pgdata")
        self.logfile = os.path.join(tmp, "postgres.log")
        self.port = None
        self.postmaster_pid = None
        self._conn = None
        r = subprocess.run(
            as_postgres([PGBIN + "/initdb", "-D", self.datadir, "-A", "trust",
                         "-U", "postgres", "--no-sync", "-E", "UTF8",
                         "--locale=C.UTF-8"]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        if r.returncode != 0:
            raise RuntimeError("initdb failed:\n" + r.stdout)
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            f.write("\ninclude 'bench.conf'\n")
        at_cleanup(self.stop)
        self._start()

    def _pg_ctl(self, *args):
        return subprocess.run(
            as_postgres([PGBIN + "/pg_ctl", "-D", self.datadir] + list(args)),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)

    def _start(self):
        for _ in range(8):
            self.port = free_port()
            conf = dict(CONF, port=str(self.port),
                        unix_socket_directories=self.tmp,
                        max_replication_slots=str(self.max_slots))
            path = os.path.join(self.datadir, "bench.conf")
            with open(path, "w") as f:
                for k, v in conf.items():
                    f.write("%s = '%s'\n" % (k, v))
            if IS_ROOT:
                shutil.chown(path, "postgres", "postgres")
            pos = os.path.getsize(self.logfile) \
                if os.path.exists(self.logfile) else 0
            r = self._pg_ctl("-w", "-t", "60", "-l", self.logfile, "start")
            self._read_pid()
            if r.returncode == 0:
                return
            with open(self.logfile, errors="replace") as f:
                f.seek(pos)
                tail = f.read()
            self._kill_postmaster()
            if "could not bind" in tail or "already in use" in tail:
                continue
            raise RuntimeError("PostgreSQL did not start:\n%s\n%s"
                               % (r.stdout, tail))
        raise RuntimeError("PostgreSQL did not start: no free port")

    def _read_pid(self):
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as f:
                self.postmaster_pid = int(f.readline())
        except (OSError, ValueError):
            pass

    def _kill_postmaster(self):
        pid, self.postmaster_pid = self.postmaster_pid, None
        if not pid:
            return
        for sig in (signal.SIGQUIT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)

    def stop(self):
        if self._conn:
            self._conn.close()
            self._conn = None
        if not self.postmaster_pid:
            return
        r = self._pg_ctl("stop", "-m", "immediate", "-w", "-t", "30")
        if r.returncode != 0:
            log("pg_ctl stop failed; killing the postmaster (pid %d)"
                % self.postmaster_pid)
            self._kill_postmaster()
        self.postmaster_pid = None

    # -- SQL
    def dsn(self):
        return "host=127.0.0.1 port=%d dbname=postgres user=postgres" \
            % self.port

    def connect(self):
        return PgConn("127.0.0.1", self.port)

    @property
    def conn(self):
        if self._conn is None:
            self._conn = self.connect()
        return self._conn

    def sql(self, q):
        return self.conn.query(q)

    def value(self, q):
        return self.conn.value(q)

    def version(self):
        return self.value("SHOW server_version")

    def create_slot(self, name):
        self.sql("SELECT pg_create_logical_replication_slot('%s', 'wal2json')"
                 % name)

    def drop_slot(self, name, timeout=30.0):
        """Drops the slot once its walsender is gone: a consumer that has
        just exited leaves the slot active until the server notices."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sql("SELECT pg_drop_replication_slot(slot_name) FROM "
                         "pg_replication_slots WHERE slot_name = '%s'"
                         % name)
                return
            except PgError as e:
                if "is active" not in str(e) or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def slot_state(self, name):
        """(active_pid or None, confirmed_flush_lsn as int)."""
        rows = self.sql("SELECT active_pid, confirmed_flush_lsn::text FROM "
                        "pg_replication_slots WHERE slot_name = '%s'" % name)
        if not rows:
            raise RuntimeError("slot %s is gone" % name)
        pid, lsn = rows[0]
        return (int(pid) if pid else None), lsn_int(lsn)

    def slot_monitor(self, name):
        """(walsender pid or None, confirmed_flush_lsn as int, the
        walsender's wait_event or None) in one query."""
        rows = self.sql(
            "SELECT s.active_pid, s.confirmed_flush_lsn::text, a.wait_event "
            "FROM pg_replication_slots s LEFT JOIN pg_stat_activity a ON "
            "a.pid = s.active_pid WHERE s.slot_name = '%s'" % name)
        if not rows:
            raise RuntimeError("slot %s is gone" % name)
        pid, lsn, wait = rows[0]
        return (int(pid) if pid else None), lsn_int(lsn), wait

    def end_position(self):
        """The WAL position after everything committed so far, once it is
        flushed (logical decoding reads only flushed WAL).  With autovacuum
        off and nothing else running, the last commit record ends here.
        When the WAL ends at a page's start, the insert position points
        past that page's header, which neither the flush position nor a
        consumer's -E ever reaches until more WAL comes: the page's start
        then."""
        row = self.conn.query(
            "SELECT pg_current_wal_insert_lsn()::text, "
            "current_setting('wal_block_size'), "
            "pg_size_bytes(current_setting('wal_segment_size'))")[0]
        end, block, segment = lsn_int(row[0]), int(row[1]), int(row[2])
        if end % segment <= 40:
            end -= end % segment
        elif end % block <= 24:
            end -= end % block
        deadline = time.monotonic() + 30
        while lsn_int(self.value(
                "SELECT pg_current_wal_flush_lsn()::text")) < end:
            if time.monotonic() > deadline:
                raise RuntimeError("WAL not flushed after 30 s")
            time.sleep(0.01)
        return end
