# SPDX-License-Identifier: MIT
"""The benchmark's throwaway PostgreSQL 15 cluster with wal2json: the
tests' (tests/integration/wctest/cluster.py) with the benchmark's
settings, its SQL over the wire protocol (pgwire) rather than psql, and
failures raised as RuntimeError."""

import os
import shutil
import tempfile
import time

from wctest import cluster as _wc
from wctest.base import IS_ROOT, PGBIN, TestFailure, free_port  # noqa: F401
from wctest.base import lsn_int, lsn_str  # noqa: F401

from .pgwire import PgConn, PgError
from .procs import at_cleanup, log

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


class Cluster(_wc.Cluster):
    # pg_ctl in its own session: a Ctrl-C reaches bench/run only, which
    # then stops everything in order; nothing to keep at the end
    new_session = True
    stop_mode = "immediate"

    def __init__(self, tmp, slots=64):
        self._conn = None
        try:
            super().__init__(conf=dict(CONF, max_replication_slots=str(
                max(16, slots))), tmpdir=tmp)
        except TestFailure as e:
            raise RuntimeError(str(e)) from None

    def stop(self):
        if self._conn:
            self._conn.close()
            self._conn = None
        super().stop()

    # -- SQL (dsn() is the tests')
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

    # slot name -> output plugin, for the slots that are not wal2json's
    plugins = {}

    def create_slot(self, name):
        self.sql("SELECT pg_create_logical_replication_slot('%s', '%s')"
                 % (name, self.plugins.get(name, "wal2json")))

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
