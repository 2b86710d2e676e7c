# SPDX-License-Identifier: MIT
"""walcast tail and walcast slot status/create/drop.

- tail without --slot: a TEMPORARY slot, only changes committed after it is
  ready, the config's filter applies, its sinks do not, --limit N exits 0
  after N lines, the temporary slot is gone afterwards;
- tail --slot NAME on an existing inactive slot prints its pending changes
  and never confirms: confirmed_flush_lsn unchanged, a second run prints
  the same lines;
- slot create / status / drop.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, fail  # noqa: E402

SCHEMA = "town6-bern"
STATUS_KEYS = ["slot", "plugin", "active_pid", "confirmed_flush_lsn",
               "restart_lsn", "retained_wal_bytes", "wal_status"]


def tail(cfg, c, *args, name):
    return h.Proc([h.binary("walcast"), "tail", "-c", cfg] + list(args),
                  c.tmp, name=name)


def parse_status(text):
    st = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        k, sep, v = line.partition(":")
        check(sep, "slot status line without 'key: value': %r" % line)
        st[k.strip()] = v.strip()
    missing = [k for k in STATUS_KEYS if k not in st]
    check(not missing, "slot status lacks %s:\n%s" % (missing, text))
    return st


def status(cfg):
    r = h.walcast("slot", "status", "-c", cfg)
    check(r.returncode == 0, "walcast slot status exited %d\nstdout:%s\n"
          "stderr:%s" % (r.returncode, r.stdout, r.stderr))
    return parse_status(r.stdout)


def check_status(c, cfg, slot, active):
    """walcast slot status against pg_replication_slots read just before
    and just after it (a streaming daemon may confirm in between)."""
    q = ("SELECT pg_wal_lsn_diff(pg_current_wal_%s_lsn(), restart_lsn)"
         "::bigint::text FROM pg_replication_slots WHERE slot_name = '%s'")
    db0 = c.slot(slot)
    check(db0 is not None, "slot %s missing" % slot)
    lo = c.sql_rows(q % ("flush", slot), 1)[0][0]
    st = status(cfg)
    hi = c.sql_rows(q % ("insert", slot), 1)[0][0]
    db1 = c.slot(slot)
    probs = []
    if st["slot"] != slot:
        probs.append("slot: %r" % st["slot"])
    if st["plugin"] != h.PLUGIN:
        probs.append("plugin: %r" % st["plugin"])
    if active:
        if st["active_pid"] != db1["active_pid"] or db1["active_pid"] is None:
            probs.append("active_pid %r, pg_replication_slots says %r"
                         % (st["active_pid"], db1["active_pid"]))
    elif st["active_pid"] != "-":
        probs.append("active_pid %r for an inactive slot, expected '-'"
                     % st["active_pid"])
    for k in ("confirmed_flush_lsn", "restart_lsn"):
        try:
            ok = h.lsn_int(db0[k]) <= h.lsn_int(st[k]) <= h.lsn_int(db1[k])
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            probs.append("%s %r, pg_replication_slots says %r (before) / "
                         "%r (after)" % (k, st[k], db0[k], db1[k]))
    if st["wal_status"] not in (db0["wal_status"], db1["wal_status"]):
        probs.append("wal_status %r, pg_replication_slots says %r"
                     % (st["wal_status"], db1["wal_status"]))
    try:
        rb = int(st["retained_wal_bytes"])
        if not active and not int(lo) <= rb <= int(hi):
            probs.append("retained_wal_bytes %d, expected between %s and %s"
                         % (rb, lo, hi))
        if rb < 0:
            probs.append("retained_wal_bytes %d < 0" % rb)
    except ValueError:
        probs.append("retained_wal_bytes %r is not an integer"
                     % st["retained_wal_bytes"])
    if probs:
        fail("walcast slot status: " + "; ".join(probs) + "\n" + repr(st))
    return st


def case_temporary(c):
    out = os.path.join(c.tmp, "sink_tmp.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "tmp.yaml"), c.dsn(),
                         "tail_cfg_slot", out,
                         filt={"tables": {"exclude": ["hidden"]}})
    c.sql('INSERT INTO "%s".shown VALUES (0, \'before tail\')' % SCHEMA)
    t = tail(cfg, c, "--limit", "5", name="tail-temp")
    t.wait_ready()
    temp = [r for r in c.slots() if r[1] == "true"]
    check(len(temp) == 1 and temp[0][2] == "true",
          "expected one active temporary slot while tail runs: %r"
          % c.slots())
    h.oracle_create(c, "oracle_tmp")
    c.sql('BEGIN; INSERT INTO "{s}".hidden VALUES (1);'
          'INSERT INTO "{s}".shown VALUES (1, \'a\'), (2, \'b\'), (3, \'c\');'
          'COMMIT;'
          'UPDATE "{s}".shown SET v = \'A\' WHERE id = 1;'
          'DELETE FROM "{s}".shown WHERE id = 2;'
          'INSERT INTO "{s}".shown VALUES (4, \'d\');'.format(s=SCHEMA))
    committed = time.monotonic()
    rc = t.wait(timeout=30)
    check(rc == 0, "tail --limit 5 exited %s\n%s" % (rc, t.describe()))
    # the limit is reached inside a transaction; tail confirms nothing, so
    # it must not sit out the daemon's 5 s wait for acknowledgements
    took = time.monotonic() - committed
    check(took < 4.0, "tail --limit took %.1f s to exit after the last "
          "commit" % took)
    got = h.read_jsonl(t.stdout_path)
    want = [e for e in h.oracle_read(c, "oracle_tmp")
            if e["table"] != "hidden"][:5]
    check(len(want) == 5, "oracle: %r" % want)
    # --limit stops before the last commit: its line has no mark (pgoutput
    # says where a transaction ends only in its Commit, and walcast holds
    # the transaction until then: the whole of it is read, mark and all)
    probs = h.diff_changes(got, want, "tail stdout",
                           cut=h.DECODER != "pgoutput")
    if probs:
        fail("tail output:\n  " + "\n  ".join(probs))
    h.wait_until(lambda: not [r for r in c.slots() if r[1] == "true"],
                 timeout=15, what="the temporary slot to disappear (%r)"
                 % c.slots())
    check(c.slot("tail_cfg_slot") is None,
          "tail created the config's slot 'tail_cfg_slot'")
    check(not os.path.exists(out), "tail wrote to the config's file sink")
    c.sql("SELECT pg_drop_replication_slot('oracle_tmp')")


def case_slot(c):
    out = os.path.join(c.tmp, "sink_slot.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "slot.yaml"), c.dsn(),
                         "tail_slot", out, create_slot=False)
    r = h.walcast("slot", "create", "-c", cfg)
    check(r.returncode == 0, "walcast slot create exited %d: %s"
          % (r.returncode, r.stderr))
    db = c.slot("tail_slot")
    check(db is not None and db["plugin"] == h.PLUGIN and
          db["temporary"] == "false" and db["active"] == "false",
          "after slot create: %r" % db)
    h.oracle_create(c, "oracle_slot")
    check_status(c, cfg, "tail_slot", active=False)

    c.sql('INSERT INTO "{s}".shown VALUES (10, \'x\'), (11, \'y\');'
          'UPDATE "{s}".shown SET v = \'X\' WHERE id = 10;'
          'TRUNCATE "{s}".hidden;'.format(s=SCHEMA))
    want = h.oracle_read(c, "oracle_slot")
    check(len(want) == 4, "oracle: %r" % want)
    before = c.slot("tail_slot")

    outputs = []
    for run in (1, 2):
        t = tail(cfg, c, "--slot", "tail_slot", "--limit", "4",
                 name="tail-slot-%d" % run)
        rc = t.wait(timeout=30)
        check(rc == 0, "tail --slot run %d exited %s\n%s"
              % (run, rc, t.describe()))
        check("streaming" in t.stderr(), "tail --slot did not log "
              "'streaming'\n" + t.describe())
        got = h.read_jsonl(t.stdout_path)
        probs = h.diff_changes(got, want, "tail --slot run %d" % run,
                               cut=h.DECODER != "pgoutput")
        if probs:
            fail("tail --slot output:\n  " + "\n  ".join(probs))
        outputs.append(got)
        time.sleep(1.5)
        now = c.slot("tail_slot")
        # restart_lsn may advance up to confirmed_flush_lsn on the
        # server's own account (decoding a running-xacts record below the
        # confirmed position); confirmed_flush_lsn must not move at all
        check(now["confirmed_flush_lsn"] == before["confirmed_flush_lsn"]
              and h.lsn_int(now["restart_lsn"]) <= h.lsn_int(
                  before["confirmed_flush_lsn"]),
              "tail --slot moved the slot: before %r, after run %d %r"
              % (before, run, now))
        check(now["active"] == "false", "slot active after tail: %r" % now)

    # the daemon on the same slot: status shows it active; its file sink
    # writes the same lines as tail printed
    d = h.start_walcastd(cfg, c.tmp)
    h.wait_until(lambda: h.count_lines(out) >= 4, timeout=30,
                 what="4 lines from walcastd")
    check_status(c, cfg, "tail_slot", active=True)
    d.stop()
    with open(out, "rb") as f:
        daemon_bytes = f.read()
    with open(os.path.join(c.tmp, "tail-slot-1.stdout"), "rb") as f:
        tail_bytes = f.read()
    # but for the mark of the last transaction's end: tail --limit 4
    # stopped before that commit (with pgoutput, walcast holds a
    # transaction until its Commit: tail read it whole, mark and all)
    if h.DECODER != "pgoutput":
        check(tail_bytes.endswith(b"}\n") and
              not tail_bytes.endswith(b',"last":true}\n'),
              "tail --limit marked a transaction whose commit it did not "
              "read")
        tail_bytes = tail_bytes[:-2] + b',"last":true}\n'
    check(daemon_bytes == tail_bytes, "walcastd's file sink and walcast "
          "tail differ:\n--- file sink:\n%s--- tail:\n%s"
          % (daemon_bytes.decode(errors="replace"),
             tail_bytes.decode(errors="replace")))
    st = check_status(c, cfg, "tail_slot", active=False)
    check(h.lsn_int(st["confirmed_flush_lsn"]) >= h.lsn_int(
        want[-1]["end_lsn"]), "walcastd did not confirm: %r" % st)

    r = h.walcast("slot", "drop", "-c", cfg)
    check(r.returncode == 0, "walcast slot drop exited %d: %s"
          % (r.returncode, r.stderr))
    check(c.slot("tail_slot") is None, "slot still there after drop")


def test():
    c = h.Cluster()
    c.sql('CREATE SCHEMA "{s}"; CREATE TABLE "{s}".shown (id int PRIMARY '
          'KEY, v text); CREATE TABLE "{s}".hidden (id int PRIMARY KEY);'
          .format(s=SCHEMA))
    cases = h.Cases()
    cases.run("tail with a temporary slot", case_temporary, c)
    cases.run("tail --slot, slot create/status/drop", case_slot, c)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
