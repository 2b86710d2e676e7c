# SPDX-License-Identifier: MIT
"""A throwaway PostgreSQL 15 cluster with wal2json (the tests' and the
benchmark's)."""

import os
import shutil
import signal
import subprocess
import time

from .base import (IS_ROOT, PGBIN, _cleanups, fail, free_port, log,
                   lsn_int, make_tmpdir, wait_until)

# --------------------------------------------------------------------------
# PostgreSQL cluster

BASE_CONF = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "logical",
    "max_replication_slots": "10",
    "max_wal_senders": "10",
    "output_plugin_libraries": "pgoutput, test_decoding, wal2json",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
    "log_connections": "off",
}


def _as_pg(argv):
    if IS_ROOT:
        return ["runuser", "-u", "postgres", "--"] + argv
    return argv


class Cluster:
    """A throwaway PostgreSQL 15 cluster.  conf: dict of postgresql.conf
    overrides (values written quoted).  Subclasses may set new_session
    (pg_ctl, and so the server, in a session of its own: a Ctrl-C in the
    terminal does not reach it) and stop_mode (pg_ctl stop -m)."""

    new_session = False
    stop_mode = "fast"

    def __init__(self, conf=None, tmpdir=None):
        self.tmp = tmpdir or make_tmpdir()
        self.datadir = os.path.join(self.tmp, "pgdata")
        self.logfile = os.path.join(self.tmp, "postgres.log")
        self.conffile = os.path.join(self.datadir, "walcast_test.conf")
        self.conf = dict(BASE_CONF)
        self.conf["unix_socket_directories"] = self.tmp
        if conf:
            self.conf.update(conf)
        self.port = None
        self.running = False
        self._initdb()
        _cleanups.append(self.stop)
        self.start()

    # -- setup
    def _initdb(self):
        r = subprocess.run(
            _as_pg([PGBIN + "/initdb", "-D", self.datadir, "-A", "trust",
                    "-U", "postgres", "--no-sync", "-E", "UTF8",
                    "--locale=C.UTF-8"]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=self.new_session)
        if r.returncode != 0:
            fail("initdb failed:\n" + r.stdout)
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            f.write("\ninclude 'walcast_test.conf'\n")

    def _write_conf(self):
        with open(self.conffile, "w") as f:
            for k, v in self.conf.items():
                if v is None:
                    continue
                f.write("%s = '%s'\n" % (k, str(v).replace("'", "''")))
        os.chmod(self.conffile, 0o644)
        if IS_ROOT:
            shutil.chown(self.conffile, "postgres", "postgres")

    def set_conf(self, **kw):
        """Updates settings in the include file (a None value removes one);
        call reload() or restart() afterwards."""
        self.conf.update(kw)
        self._write_conf()

    def hba_prepend(self, lines):
        path = os.path.join(self.datadir, "pg_hba.conf")
        with open(path) as f:
            old = f.read()
        with open(path, "w") as f:
            f.write("".join(l + "\n" for l in lines) + old)

    def pg_ctl(self, *args, check=True):
        r = subprocess.run(_as_pg([PGBIN + "/pg_ctl", "-D", self.datadir]
                                  + list(args)),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, start_new_session=self.new_session)
        if check and r.returncode != 0:
            fail("pg_ctl %s failed:\n%s\n--- server log tail:\n%s"
                 % (" ".join(args), r.stdout, self.log_tail()))
        return r

    def log_tail(self, n=40):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    # -- lifecycle
    def start(self):
        for attempt in range(8):
            if self.port is None or attempt > 0:
                self.port = free_port()
            self.conf["port"] = str(self.port)
            self._write_conf()
            logpos = os.path.getsize(self.logfile) if os.path.exists(
                self.logfile) else 0
            r = self.pg_ctl("-w", "-t", "60", "-l", self.logfile, "start",
                            check=False)
            if r.returncode == 0:
                self.running = True
                return
            with open(self.logfile, errors="replace") as f:
                f.seek(logpos)
                newlog = f.read()
            if "could not bind" in newlog or "already in use" in newlog \
                    or "could not create any TCP/IP sockets" in newlog:
                log("port %d busy, retrying" % self.port)
                self._kill_postmaster()
                continue
            fail("cluster did not start:\n%s\n--- server log:\n%s"
                 % (r.stdout, newlog))
        fail("cluster did not start: no free port after retries")

    def _kill_postmaster(self):
        pidfile = os.path.join(self.datadir, "postmaster.pid")
        try:
            with open(pidfile) as f:
                pid = int(f.readline().strip())
        except (OSError, ValueError):
            return
        for sig, wait in ((signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.1)

    def stop(self):
        if not self.running:
            return
        self.running = False
        r = self.pg_ctl("stop", "-m", self.stop_mode, "-w", "-t", "30",
                        check=False)
        if r.returncode != 0:
            log("pg_ctl stop failed, killing postmaster:", r.stdout.strip())
            self._kill_postmaster()

    def restart(self):
        self.stop()
        self.start()

    def reload(self):
        self.pg_ctl("reload")
        time.sleep(0.5)

    # -- SQL
    def dsn(self, user="postgres", password=None, dbname="postgres"):
        s = "host=127.0.0.1 port=%d dbname=%s user=%s" % (self.port, dbname,
                                                          user)
        if password is not None:
            s += " password=%s" % password
        return s

    def sql(self, query, user="postgres", password=None, check=True,
            dbname="postgres"):
        """Runs query (one or more statements) through psql; returns the rows
        of every result as lists of strings (None for SQL NULL)."""
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("PG"):
                del env[k]
        env["PGCONNECT_TIMEOUT"] = "10"
        if password is not None:
            env["PGPASSWORD"] = password
        nullmark = "\x01NULL\x01"
        recsep = "\x1e\x1d@rec@\x1d\x1e"
        r = subprocess.run(
            ["psql", "-X", "-q", "-A", "-t", "-z", "-R", recsep, "-v",
             "ON_ERROR_STOP=1", "-P", "null=" + nullmark,
             "-h", "127.0.0.1", "-p", str(self.port), "-U", user,
             "-d", dbname, "-f", "-"],
            input=query.encode(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env)
        if r.returncode != 0:
            if check:
                fail("SQL failed (%d): %s\n%s" % (r.returncode, query[:2000],
                                                  r.stderr.decode(errors="replace")))
            return None
        # Fields are NUL separated, rows by recsep, and psql ends each
        # result with a newline: only one statement of the script may
        # return rows.
        out = r.stdout.decode()
        if out == "":
            return []
        if out.endswith("\n"):
            out = out[:-1]
        return [[None if v == nullmark else v for v in rec.split("\0")]
                for rec in out.split(recsep)]

    def sql_rows(self, query, ncols, **kw):
        """Like sql(), checking that every row has ncols columns."""
        rows = self.sql(query, **kw)
        for r in rows:
            if len(r) != ncols:
                fail("sql_rows: row %r has not %d columns" % (r, ncols))
        return rows

    def sql_value(self, query, **kw):
        rows = self.sql(query, **kw)
        if len(rows) != 1:
            fail("expected one value from %r, got %r" % (query, rows))
        return rows[0][0]

    def slot(self, name):
        """pg_replication_slots row for name as a dict, or None."""
        cols = ["slot_name", "plugin", "slot_type", "temporary", "active",
                "active_pid", "restart_lsn", "confirmed_flush_lsn",
                "wal_status"]
        rows = self.sql_rows(
            "SELECT %s FROM pg_replication_slots WHERE slot_name = '%s'"
            % (", ".join(c + "::text" for c in cols), name), len(cols))
        if not rows:
            return None
        return dict(zip(cols, rows[0]))

    def slots(self):
        return self.sql_rows(
            "SELECT slot_name, temporary::text, active::text FROM "
            "pg_replication_slots ORDER BY slot_name", 3)

    def wait_flushed(self):
        """Waits until all WAL written so far is flushed (with
        synchronous_commit=off a commit is not flushed at once, and
        logical decoding only reads flushed WAL); returns where it ends.
        That is pg_current_wal_insert_lsn(), except when the WAL ends at
        a page's start: the insert position then points past the page's
        header, where neither the flush position nor a slot ever gets
        until more WAL comes."""
        row = self.sql_rows(
            "SELECT pg_current_wal_insert_lsn()::text, "
            "current_setting('wal_block_size'), "
            "pg_size_bytes(current_setting('wal_segment_size'))", 3)[0]
        target = lsn_int(row[0])
        block, segment = int(row[1]), int(row[2])
        if target % segment <= 40:
            target -= target % segment
        elif target % block <= 24:
            target -= target % block

        def flushed():
            return lsn_int(self.sql_value(
                "SELECT pg_current_wal_flush_lsn()::text")) >= target
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if flushed():
                return target
            time.sleep(0.05)
        # the WAL writer did not get there: force a flush with a
        # synchronous (empty) transaction
        self.sql("BEGIN; SET LOCAL synchronous_commit = on; "
                 "SELECT txid_current(); COMMIT;")
        wait_until(flushed, timeout=10, interval=0.05, what="WAL flush")
        return target

    def current_lsn(self):
        return self.sql_value("SELECT pg_current_wal_lsn()::text")


# --------------------------------------------------------------------------
# walcast configuration
