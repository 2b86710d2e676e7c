# SPDX-License-Identifier: MIT
"""Errors: what walcastd (and walcast tail) say and how they exit.

Configuration: --version, --check / walcast check with a good config (0), a
bad value, an unknown key, an unknown librdkafka property and a plugin
built for another ABI (78, "FILE:LINE:COL: message").
Server side (exit 1 unless noted), each message with the given words:
unreachable, wrong password, role without REPLICATION, wal_level=replica,
wal2json not installed, wal2json not in output_plugin_libraries, slot active
for another PID (walcastd waits and retries, and takes a SIGHUP reload
meanwhile; tail exits 1), slot missing
with create_slot: false (69), slot invalidated (69); and a warning for a
table whose UPDATE/DELETE wal2json drops for lack of a replica identity.
A change that does not decode (text that is not UTF-8, from a SQL_ASCII
database, which is warned of at the start): exit 1 naming its position;
what came before it is confirmed, and the next start stops at the same
message, repeating nothing before it and skipping nothing.  A replication
message that does not parse (through a proxy that garbles the type of the
first XLogData, harness.PgProxy): exit 1 with the error said (it used to
exit silently).  A sink that fails at every attempt (/dev/full): its error
once, the attempts after it as notices, the reconnections quiet, and the
recovery said once a reload mends it.
"""

import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, fail  # noqa: E402

SCHEMA = "org-acme"


class Ctx:
    def __init__(self, c):
        self.c = c
        self.n = 0

    def cfg(self, slot, dsn=None, **kw):
        self.n += 1
        path = os.path.join(self.c.tmp, "e%02d_%s.yaml" % (self.n, slot))
        out = os.path.join(self.c.tmp, "e%02d_%s.jsonl" % (self.n, slot))
        return h.write_config(path, dsn or self.c.dsn(), slot, out, **kw), out


def expect_exit(argv, c, name, words, rc, timeout=45):
    """Runs argv to its exit; checks the exit code, that stderr holds every
    word and, for walcastd (sd-daemon log prefixes), has an error line
    (<3>)."""
    p = h.Proc(argv, c.tmp, name=name)
    got = p.wait(timeout=timeout)
    err = p.stderr()
    probs = []
    if got != rc:
        probs.append("exit code %s, expected %d" % (got, rc))
    missing = [w for w in words if w not in err]
    if missing:
        probs.append("stderr lacks %r" % missing)
    if argv[0] == h.binary("walcastd") and not any(
            l.startswith("<3>") for l in err.splitlines()):
        probs.append("no error line (\"<3>...\") on stderr")
    if probs:
        fail("%s: %s\n  command: %s\n  stderr:\n%s"
             % (name, "; ".join(probs), " ".join(argv), err))
    h.log("%s: exit %d, %s" % (name, got, _first_err(err)))


def _first_err(err):
    lines = err.splitlines()
    return next((l for l in lines if l.startswith("<3>")),
                lines[-1] if lines else "")


def daemon_and_tail(ctx, name, words, rc, slot, dsn=None, tail=True,
                    tail_words=None, tail_rc=None, tail_args=(), **kw):
    cfg, _ = ctx.cfg(slot, dsn=dsn, **kw)
    expect_exit([h.binary("walcastd"), "-c", cfg], ctx.c, "walcastd-" + name,
                words, rc)
    if tail:
        expect_exit([h.binary("walcast"), "tail", "-c", cfg] +
                    list(tail_args), ctx.c, "tail-" + name,
                    tail_words or words, rc if tail_rc is None else tail_rc)


def drop_all_slots(c):
    for name, _, active in c.slots():
        if active == "false":
            c.sql("SELECT pg_drop_replication_slot('%s')" % name)


# --------------------------------------------------------------------------

def case_version(ctx):
    r = h.run([h.binary("walcastd"), "--version"])
    check(r.returncode == 0 and r.stdout.strip() == "walcastd 0.1.0",
          "walcastd --version: exit %d, stdout %r, stderr %r"
          % (r.returncode, r.stdout, r.stderr))


def run_check(cfg):
    """(walcastd --check, walcast check) results"""
    return (h.run([h.binary("walcastd"), "-c", cfg, "--check"], timeout=20),
            h.run([h.binary("walcast"), "check", "-c", cfg], timeout=20))


def case_check_good(ctx):
    cfg, _ = ctx.cfg("good_cfg", filt={"schemas": {"include": ["town6"]},
                                       "ops": ["insert", "delete"]})
    for r, what in zip(run_check(cfg), ("walcastd --check", "walcast check")):
        check(r.returncode == 0, "%s on a valid config exited %d\nstderr: %s"
              % (what, r.returncode, r.stderr))


def bad_config(ctx, name, text, line):
    path = os.path.join(ctx.c.tmp, name + ".yaml")
    with open(path, "w") as f:
        f.write(text)
    # "FILE:LINE:COL: message" somewhere on stderr (after a log prefix
    # such as "<3>" or "walcast: error: ")
    pat = re.compile(r"(^|[\s>])" + re.escape(path) + r":%d:\d+: \S" % line,
                     re.M)
    probs = []
    for r, what in zip(run_check(path), ("walcastd --check",
                                         "walcast check")):
        if r.returncode != 78:
            probs.append("%s exited %d, expected 78" % (what, r.returncode))
        if not pat.search(r.stderr):
            probs.append("%s stderr lacks %s:%d:COL: message (stderr %r)"
                         % (what, path, line, r.stderr))
    # the daemon refuses to start on it the same way
    r = h.run([h.binary("walcastd"), "-c", path], timeout=30)
    if r.returncode != 78 or not pat.search(r.stderr):
        probs.append("walcastd -c exited %d, stderr %r (expected 78 and "
                     "FILE:LINE:COL)" % (r.returncode, r.stderr))
    if probs:
        fail("\n  ".join(probs) + "\n  config:\n" + text)


def case_check_bad_value(ctx):
    dsn = h.yq(ctx.c.dsn())
    bad_config(ctx, "bad_value",
               "source:\n  dsn: %s\n  slot: \"Not-A-Slot!\"\n"
               "  create_slot: true\n  status_interval: 1s\nsinks:\n"
               "  - file:\n      path: /dev/null\n" % dsn, 3)
    bad_config(ctx, "bad_duration",
               "source:\n  dsn: %s\n  slot: ok_slot\n"
               "  create_slot: true\n  status_interval: 10\nsinks:\n"
               "  - file:\n      path: /dev/null\n" % dsn, 5)


def case_check_unknown_key(ctx):
    dsn = h.yq(ctx.c.dsn())
    bad_config(ctx, "unknown_key",
               "source:\n  dsn: %s\n  slot: ok_slot\n  create_slot: true\n"
               "  status_interval: 1s\n  no_such_key: 1\nsinks:\n"
               "  - file:\n      path: /dev/null\n" % dsn, 6)


def case_check_sinks(ctx):
    """--check loads what the daemon's sinks would: a librdkafka property
    librdkafka does not know, and a plugin built for another ABI, are
    refused by the check (not only at start), naming the sink's line."""
    dsn = h.yq(ctx.c.dsn())
    head = ("source:\n  dsn: %s\n  slot: ok_slot\n  create_slot: true\n"
            "sinks:\n  - file:\n      path: /dev/null\n" % dsn)
    bad_config(ctx, "bad_kafka_property",
               head + "  - kafka:\n      topic: \"{schema}.{table}\"\n"
               "      properties:\n"
               "        bootstrap.servers: \"127.0.0.1:9\"\n"
               "        compresion.type: lz4\n", 8)
    path = os.path.join(ctx.c.tmp, "bad_kafka_property.yaml")
    for r, what in zip(run_check(path), ("walcastd --check",
                                         "walcast check")):
        check("compresion.type" in r.stderr, "%s does not name the property: "
              "%r" % (what, r.stderr))
    abi2 = os.environ.get("WC_ABI2_SO")
    check(abi2, "WC_ABI2_SO (tests/plugins/abi2.c) is not set")
    bad_config(ctx, "bad_plugin_abi",
               head + "  - plugin:\n      path: %s\n" % h.yq(abi2), 8)
    path = os.path.join(ctx.c.tmp, "bad_plugin_abi.yaml")
    for r, what in zip(run_check(path), ("walcastd --check",
                                         "walcast check")):
        check("built for walcast plugin ABI 2" in r.stderr,
              "%s does not say the ABI: %r" % (what, r.stderr))


def case_unreachable(ctx):
    dsn = "host=127.0.0.1 port=%d dbname=postgres user=postgres " \
          "connect_timeout=5" % h.free_port()
    daemon_and_tail(ctx, "unreachable", ["server unreachable"], 1,
                    "unreach", dsn=dsn)


def case_auth(ctx):
    c = ctx.c
    c.sql("CREATE ROLE scram_user LOGIN REPLICATION PASSWORD 'right'")
    c.hba_prepend(["host all scram_user 127.0.0.1/32 scram-sha-256",
                   "host replication scram_user 127.0.0.1/32 scram-sha-256"])
    c.reload()
    check(c.sql("SELECT 1", user="scram_user", password="right",
                check=False) is not None, "scram_user cannot log in with "
          "the right password")
    check(c.sql("SELECT 1", user="scram_user", password="wrong",
                check=False) is None, "scram_user logs in with a wrong "
          "password: pg_hba.conf not in effect")
    daemon_and_tail(ctx, "auth", ["authentication failed"], 1, "auth_slot",
                    dsn=c.dsn(user="scram_user", password="wrong"))


def case_no_replication(ctx):
    ctx.c.sql("CREATE ROLE norepl_role LOGIN")
    daemon_and_tail(ctx, "norepl", ["REPLICATION", "norepl_role"], 1,
                    "norepl_slot", dsn=ctx.c.dsn(user="norepl_role"))


def case_missing_slot(ctx):
    cfg, _ = ctx.cfg("no_such_slot", create_slot=False)
    expect_exit([h.binary("walcastd"), "-c", cfg], ctx.c, "walcastd-missing",
                ["does not exist", "create_slot"], 69)
    expect_exit([h.binary("walcast"), "tail", "-c", cfg, "--slot",
                 "no_such_slot"], ctx.c, "tail-missing", ["does not exist"],
                69)
    check(ctx.c.slot("no_such_slot") is None, "the slot was created")


def case_active_and_warning(ctx):
    c = ctx.c
    c.sql('CREATE TABLE "%s".nopk (x int, y text); '
          'CREATE TABLE "%s".marker (id int PRIMARY KEY);' % (SCHEMA, SCHEMA))
    cfg1, out1 = ctx.cfg("busy_slot")
    d1 = h.start_walcastd(cfg1, c.tmp, name="walcastd-first")
    try:
        cfg2, _ = ctx.cfg("busy_slot")
        # a second daemon waits for the slot (saying so once) and retries
        d2 = h.start_walcastd(cfg2, c.tmp, name="walcastd-second",
                              ready=False)
        d2.wait_ready("waiting for it to be released", timeout=30)
        time.sleep(2.5)  # past the first retries (1 s, 2 s)
        err2 = d2.stderr()
        check(d2.poll() is None, "the second walcastd exited instead of "
              "waiting for the slot\n" + d2.describe())
        check(err2.count("is active for PID") == 1,
              "the busy slot was not logged exactly once while retrying:\n"
              + err2)
        # a reload (logrotate's SIGHUP) while waiting: it used to crash
        # on the checkpoint the first start had not made yet
        d2.send(signal.SIGHUP)
        h.wait_until(lambda: "reloaded" in d2.stderr() or d2.poll(),
                     timeout=10, what="the reload while waiting")
        check(d2.poll() is None and "reloaded" in d2.stderr(),
              "SIGHUP while waiting for the slot\n" + d2.describe())
        d2.stop()
        expect_exit([h.binary("walcast"), "tail", "-c", cfg2, "--slot",
                     "busy_slot"], c, "tail-active", ["is active for PID"],
                    1)
        check(d1.poll() is None, "the first walcastd died\n" + d1.describe())

        # UPDATE/DELETE on a table without key: wal2json drops them; the
        # daemon must warn, naming the table, and keep going
        c.sql('INSERT INTO "{s}".nopk VALUES (1, \'a\');'
              'UPDATE "{s}".nopk SET y = \'b\';'
              'DELETE FROM "{s}".nopk;'
              'INSERT INTO "{s}".marker VALUES (1);'.format(s=SCHEMA))
        h.wait_until(lambda: any(e.get("table") == "marker" for e in
                                 h.read_jsonl(out1, complete_only=True)),
                     timeout=30, what="the marker row in the output")

        def warned():
            return [l for l in d1.stderr().splitlines()
                    if l.startswith("<4>") and "nopk" in l and
                    "replica identity" in l.lower()]
        try:
            lines = h.wait_until(warned, timeout=10, what="the warning")
        except h.TestFailure:
            fail("no warning line (<4>) naming table nopk and mentioning "
                 "REPLICA IDENTITY\n" + d1.describe())
        h.log("warning:", lines[0])
        ops = [(e.get("op"), e.get("table")) for e in h.read_jsonl(
            out1, complete_only=True)]
        check(ops == [("insert", "nopk"), ("insert", "marker")],
              "output: %r" % ops)
    finally:
        if d1.poll() is None:
            d1.stop()
        else:
            d1.kill()
    c.sql("SELECT pg_drop_replication_slot('busy_slot')")


def case_undecodable(ctx):
    c, db = ctx.c, "ascii_db"
    c.sql("CREATE DATABASE %s ENCODING 'SQL_ASCII' LC_COLLATE 'C' "
          "LC_CTYPE 'C' TEMPLATE template0" % db)
    c.sql("CREATE TABLE t (id int PRIMARY KEY, v text)", dbname=db)
    cfg, out = ctx.cfg("undecodable", dsn=c.dsn(dbname=db))
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-undecodable")
    try:
        c.sql("INSERT INTO t VALUES (1, 'ASCII')", dbname=db)
        c.sql("BEGIN; INSERT INTO t VALUES (2, 'ASCII');"
              "INSERT INTO t VALUES (3, E'not UTF-8: \\xff'); COMMIT",
              dbname=db)
        c.sql("INSERT INTO t VALUES (4, 'ASCII')", dbname=db)
        rc = d.wait(timeout=30)
    finally:
        d.kill()
    err = d.stderr()
    at = h.undecodable_at(err)
    check(rc == 1 and at and "invalid UTF-8" in err,
          "exit %s, expected 1 with the decode error\n%s"
          % (rc, d.describe()))
    check("server_encoding SQL_ASCII" in err and "needs a UTF8 database"
          in err, "no warning of the database's encoding\n" + d.describe())
    check("<3>stopping before that message" in err and
          "without the commit of transaction" not in err,
          "not (only) the word of what the stop means\n" + d.describe())
    first = h.read_jsonl(out)
    ids = [int(e["columns"][0]["value"]) for e in first]
    check(ids[:1] == [1] and 4 not in ids, "output %r: expected row 1, "
          "perhaps row 2, and nothing after the bad row" % ids)
    # what was acknowledged before the bad message is confirmed: the
    # next start does not repeat it
    conf = h.lsn_int(c.slot("undecodable")["confirmed_flush_lsn"])
    check(conf == h.lsn_int(first[0]["end_lsn"]),
          "confirmed_flush_lsn %s, expected %s, the end of the transaction "
          "before the bad one" % (h.lsn_str(conf), first[0]["end_lsn"]))
    h.check_stops_again(cfg, c.tmp, at, "walcastd-undecodable2")
    ids2 = [int(e["columns"][0]["value"])
            for e in h.read_jsonl(out)[len(first):]]
    check(1 not in ids2 and 4 not in ids2,
          "started again, it wrote %r: row 1 again or the row after the bad "
          "one" % ids2)
    c.sql("SELECT pg_drop_replication_slot('undecodable')")


def case_unparsable(ctx):
    c = ctx.c
    garbled = []

    def garble(msg):
        """the first XLogData ('w' in CopyData) becomes type 'z'"""
        if msg[0:1] == b"d" and msg[5:6] == b"w" and not garbled:
            garbled.append(msg)
            return msg[:5] + b"z" + msg[6:]
        return msg

    # the table of case_active_and_warning, for when this case runs alone
    c.sql('CREATE TABLE IF NOT EXISTS "%s".marker (id int PRIMARY KEY)'
          % SCHEMA)
    proxy = h.PgProxy(c.port, garble)
    try:
        cfg, _ = ctx.cfg("unparsable", dsn=proxy.dsn())
        d = h.start_walcastd(cfg, c.tmp, name="walcastd-unparsable")
        try:
            c.sql('INSERT INTO "%s".marker VALUES (100)' % SCHEMA)
            rc = d.wait(timeout=30)
        finally:
            d.kill()
        check(garbled, "the proxy saw no XLogData")
        err = d.stderr()
        check(rc == 1 and "<3>unexpected replication message type 0x7a" in
              err and "<3>stopping before that message" in err,
              "exit %s; expected 1 with the error said\n%s"
              % (rc, d.describe()))
    finally:
        proxy.close()
    c.sql("SELECT pg_drop_replication_slot('unparsable')")


def case_sink_keeps_failing(ctx):
    """A sink that fails at every attempt (a file sink on /dev/full): the
    error is said once, the attempts after it counted at notice level and
    the reconnections at debug level; a reload mends the path and the
    recovery is said."""
    c = ctx.c
    c.sql('CREATE TABLE "%s".full_t (id int PRIMARY KEY)' % SCHEMA)
    cfg, out = ctx.cfg("sink_full")
    with open(cfg) as f:
        good = f.read()
    with open(cfg, "w") as f:
        f.write(good.replace(h.yq(out), h.yq("/dev/full")))
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-sink-full")
    try:
        c.sql('INSERT INTO "%s".full_t VALUES (1)' % SCHEMA)
        h.wait_until(lambda: "could not deliver again (3 times" in d.stderr()
                     or d.poll() is not None, timeout=30,
                     what="the third failed attempt")
        with open(cfg, "w") as f:
            f.write(good)
        d.send(signal.SIGHUP)
        h.wait_until(lambda: "delivering again after" in d.stderr() or
                     d.poll() is not None, timeout=60,
                     what="the recovery\n" + d.describe())
        err = d.stderr()
        first = '<3>plugin "file:/dev/full" could not deliver a transaction'
        check(err.count(first) == 1 and "<6>replaying from" in err and
              err.count("<6>connected to") == 2,
              "a sink failing at every attempt: expected its error once, "
              "\"connected to\" twice (the start and the first replay) and "
              "the rest quiet\n" + d.describe())
        check(any(e.get("table") == "full_t" for e in h.read_jsonl(out)),
              "the row is not in the mended file sink")
    finally:
        d.stop()
    c.sql("SELECT pg_drop_replication_slot('sink_full')")


def case_invalidated(ctx):
    c = ctx.c
    drop_all_slots(c)
    c.set_conf(max_slot_wal_keep_size="1MB", min_wal_size="32MB",
               max_wal_size="32MB")
    c.reload()
    try:
        cfg, _ = ctx.cfg("lost_slot", create_slot=False)
        r = h.walcast("slot", "create", "-c", cfg)
        check(r.returncode == 0, "walcast slot create: exit %d, %s"
              % (r.returncode, r.stderr))
        check(c.slot("lost_slot") is not None, "slot create made no slot")
        c.sql('CREATE TABLE "%s".filler (id serial, v text)' % SCHEMA)

        def lost():
            c.sql('INSERT INTO "%s".filler (v) SELECT repeat(\'x\', 200) '
                  'FROM generate_series(1, 2000); SELECT pg_switch_wal() '
                  'IS NULL \\g /dev/null\nCHECKPOINT;' % SCHEMA)
            return c.slot("lost_slot")["wal_status"] == "lost"
        h.wait_until(lost, timeout=90, interval=0.2,
                     what=lambda: "wal_status 'lost' (%r)" % c.slot("lost_slot"))
        expect_exit([h.binary("walcastd"), "-c", cfg], c,
                    "walcastd-invalidated", ["invalidated"], 69)
        expect_exit([h.binary("walcast"), "tail", "-c", cfg, "--slot",
                     "lost_slot"], c, "tail-invalidated", ["invalidated"],
                    69)
    finally:
        drop_all_slots(c)
        c.set_conf(max_slot_wal_keep_size=None, min_wal_size=None,
                   max_wal_size=None)
        c.reload()


def case_not_allowed(ctx):
    c = ctx.c
    c.set_conf(output_plugin_libraries="pgoutput")
    c.restart()
    try:
        daemon_and_tail(ctx, "not-allowed", ["output_plugin_libraries"], 1,
                        "opl_slot")
    finally:
        drop_all_slots(c)
        c.set_conf(output_plugin_libraries=h.BASE_CONF[
            "output_plugin_libraries"])
        c.restart()


def case_not_installed(ctx):
    c = ctx.c
    c.set_conf(dynamic_library_path="/nonexistent")
    c.restart()
    try:
        daemon_and_tail(ctx, "not-installed", ["wal2json", "not installed"],
                        1, "noinst_slot")
    finally:
        drop_all_slots(c)
        c.set_conf(dynamic_library_path=None)
        c.restart()


def case_wal_level(ctx):
    c = ctx.c
    drop_all_slots(c)
    c.set_conf(wal_level="replica")
    c.restart()
    try:
        daemon_and_tail(ctx, "wal-level", ["wal_level", "logical"], 1,
                        "wl_slot")
    finally:
        drop_all_slots(c)
        c.set_conf(wal_level="logical")
        c.restart()


def test():
    c = h.Cluster()
    c.sql('CREATE SCHEMA "%s"' % SCHEMA)
    ctx = Ctx(c)
    cases = h.Cases()
    for name, fn in [
            ("--version", case_version),
            ("check: valid config", case_check_good),
            ("check: bad values", case_check_bad_value),
            ("check: unknown key", case_check_unknown_key),
            ("check: Kafka properties and plugins", case_check_sinks),
            ("server unreachable", case_unreachable),
            ("authentication failed", case_auth),
            ("role without REPLICATION", case_no_replication),
            ("slot missing, create_slot false", case_missing_slot),
            ("slot active + no-key warning", case_active_and_warning),
            ("a change that does not decode", case_undecodable),
            ("a replication message that does not parse", case_unparsable),
            ("a sink that keeps failing", case_sink_keeps_failing),
            ("slot invalidated", case_invalidated),
            ("wal2json not allowed", case_not_allowed),
            ("wal2json not installed", case_not_installed),
            ("wal_level replica", case_wal_level)]:
        cases.run(name, fn, ctx)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
