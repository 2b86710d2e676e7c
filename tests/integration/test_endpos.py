# SPDX-License-Identifier: MIT
"""walcastd --endpos LSN: a bounded run that stops by itself.

Rows are committed in several transactions, then walcastd runs with
--endpos at the end of that WAL and a file sink.  It must exit 0 on its own
within a few seconds (status_interval is 10 s here: a stop that waits for
the next status message fails), with every change up to the end position
in the file and the slot confirmed up to it.  A second run with a later
end position delivers the new rows and repeats none of the first ones
(both runs stopped cleanly).  Then:

- an end position reached only through keepalives (the WAL after it is
  another database's, which the slot does not decode into changes);
- an end position the slot has already passed: exits at once;
- a sink that holds its acknowledgements: walcastd keeps running, the slot
  unconfirmed, until the sink acknowledges, then stops;
- `walcast tail --slot NAME --endpos LSN` prints the changes up to LSN and
  stops, without moving the slot;
- a bad value: exit 78 with a message naming --endpos;
- the end position pg_current_wal_insert_lsn() gives when the WAL ends
  exactly at a page's start: it points past the page's header, where the
  server's walEnd never gets until more WAL comes; walcastd stops all the
  same (pg_recvlogical -E would wait);
- a transaction that comes in the same read as the server's reply to
  START_REPLICATION, with nothing after it (harness.PgProxy joins them and
  drops the keepalives that follow): poll() never reports it, and a loop
  that waits for the socket before reading what libpq already holds sits
  out status_interval (fixed in beed0b2; this is its test).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, fail  # noqa: E402

SCHEMA = "town6-endpos"
SLOT = "endpos_slot"
# long enough that waiting for the next status message would show
STATUS_INTERVAL = "10s"
# how long a run may take to stop once its end position is acknowledged
STOP_S = 5.0
# a loop that waits for the next status message sends one at least every
# second (PAUSED_STATUS_MS): the fastest run must beat that
PROMPT_S = 0.9
DURATIONS = {}  # "read" or "passed": how long the runs of that kind took
EX_CONFIG = 78
XLOG_BLCKSZ = 8192
WAL_SEGMENT = 16 << 20


def insert(c, first, txns, per):
    """txns transactions of per rows each, ids from first; returns the
    ids."""
    ids = []
    for t in range(txns):
        batch = list(range(first + t * per, first + (t + 1) * per))
        c.sql("INSERT INTO \"%s\".t SELECT i, 'row ' || i FROM unnest("
              "ARRAY[%s]) i" % (SCHEMA, ",".join(map(str, batch))))
        ids += batch
    return ids


def inserted_ids(path):
    """{id: [end_lsn, ...]} of the insert lines in a file sink's output."""
    got = {}
    for e in h.read_jsonl(path):
        if e.get("op") != "insert" or e.get("schema") != SCHEMA:
            continue
        cols = {col["name"]: col["value"] for col in e["columns"]}
        got.setdefault(int(cols["id"]), []).append(h.lsn_int(e["end_lsn"]))
    return got


def confirmed(c, slot):
    return h.lsn_int(c.slot(slot)["confirmed_flush_lsn"])


def run_to(c, cfg, endpos, name, stop_s=STOP_S, kind="read"):
    """Runs walcastd --endpos; checks it exits 0 by itself within stop_s
    and logs why; returns the process."""
    t0 = time.monotonic()
    d = h.Proc([h.binary("walcastd"), "-c", cfg, "--endpos",
                h.lsn_str(endpos)], c.tmp, name=name)
    rc = d.wait(timeout=30)
    dt = time.monotonic() - t0
    DURATIONS.setdefault(kind, []).append(dt)
    h.log("%s: exit %s after %.2f s" % (name, rc, dt))
    check(rc == 0, "walcastd --endpos %s exited %s, expected 0\n%s"
          % (h.lsn_str(endpos), rc, d.describe()))
    check(dt <= stop_s, "walcastd --endpos %s took %.1f s to stop (at most "
          "%.0f s expected: did it wait for status_interval?)\n%s"
          % (h.lsn_str(endpos), dt, stop_s, d.describe()))
    check("reached the end position %s" % h.lsn_str(endpos) in d.stderr(),
          "no log line about the end position\n%s" % d.describe())
    return d


def check_confirmed(c, slot, endpos, d):
    got = confirmed(c, slot)
    check(got >= endpos, "slot %s confirmed %s after the run, short of the "
          "end position %s\n%s" % (slot, h.lsn_str(got), h.lsn_str(endpos),
                                   d.describe()))


def check_once(got, ids, what):
    missing = [i for i in ids if i not in got]
    check(not missing, "%s: %d rows missing from the output, e.g. %s"
          % (what, len(missing), missing[:10]))
    twice = [i for i in ids if len(got[i]) > 1]
    check(not twice, "%s: %d rows written more than once after clean "
          "stops, e.g. %s" % (what, len(twice), twice[:10]))


def case_runs(c, cfg, out):
    # run 1: three transactions, end position after the last
    first = insert(c, 1, 3, 5)
    c.sql("UPDATE \"%s\".t SET v = 'changed' WHERE id = 1" % SCHEMA)
    end1 = c.wait_flushed()
    d = run_to(c, cfg, end1, "walcastd-run1")
    check_confirmed(c, SLOT, end1, d)
    got = inserted_ids(out)
    check_once(got, first, "run 1")
    late = [i for i, ends in got.items() if max(ends) > end1]
    check(not late, "run 1 wrote rows committed after its end position: %s"
          % late[:10])
    check(any(e.get("op") == "update" for e in h.read_jsonl(out)),
          "run 1: the update before the end position is missing")

    # run 2: more rows, a later end position
    second = insert(c, 100, 4, 3)
    end2 = c.wait_flushed()
    d = run_to(c, cfg, end2, "walcastd-run2")
    check_confirmed(c, SLOT, end2, d)
    got = inserted_ids(out)
    check_once(got, first + second, "runs 1 and 2")
    return end1, end2


def case_keepalive(c, cfg, out):
    """Nothing of this database after the slot's position: the end
    position is reached through the idle advance (keepalive walEnd)."""
    before = h.count_lines(out)
    for i in range(3):
        c.sql("INSERT INTO other_t VALUES (%d)" % i, dbname="other")
    end = c.wait_flushed()
    check(confirmed(c, SLOT) < end, "the slot is at the end position "
          "already: the case would prove nothing")
    d = run_to(c, cfg, end, "walcastd-keepalive")
    check_confirmed(c, SLOT, end, d)
    check(h.count_lines(out) == before, "new lines in the output, from "
          "another database's transactions")


def case_passed(c, cfg, out, end1):
    """The slot is past the end position at start: exit at once."""
    before = h.count_lines(out)
    insert(c, 500, 1, 2)  # waiting in the slot, after the end position
    c.wait_flushed()
    pos = confirmed(c, SLOT)
    check(pos > end1, "the slot is not past %s" % h.lsn_str(end1))
    for i in range(2):
        d = run_to(c, cfg, end1, "walcastd-passed%d" % i, stop_s=3.0,
                   kind="passed")
        check(h.count_lines(out) == before, "walcastd delivered changes "
              "after an end position the slot had passed\n%s"
              % d.describe())
    check(confirmed(c, SLOT) == pos, "the slot moved from %s to %s"
          % (h.lsn_str(pos), h.lsn_str(confirmed(c, SLOT))))


def case_held(c):
    """Acknowledgements held by the sink: no stop before they come."""
    so = os.environ.get("WC_HOLDACKS_SO")
    if not so:
        fail("WC_HOLDACKS_SO is not set (tests/plugins not built)")
    slot = "endpos_held"
    release = os.path.join(c.tmp, "held.release")
    cfg = h.write_config(
        os.path.join(c.tmp, "held.yaml"), c.dsn(), slot, None,
        status_interval=STATUS_INTERVAL,
        # a stop begun too early would give up on the held transactions
        # long before the release
        extra="shutdown_timeout: 500ms\n"
              "sinks:\n  - plugin:\n      path: %s\n      config:\n"
              "        release: %s\n        count: %s\n"
              % (h.yq(so), h.yq(release),
                 h.yq(os.path.join(c.tmp, "held.count"))))
    r = h.walcast("slot", "create", "-c", cfg)
    check(r.returncode == 0, "slot create: %s" % r.stderr)
    insert(c, 1000, 3, 4)
    end = c.wait_flushed()
    d = h.Proc([h.binary("walcastd"), "-c", cfg, "--endpos", h.lsn_str(end)],
               c.tmp, name="walcastd-held")
    try:
        d.wait_ready()
        time.sleep(2.0)
        check(d.poll() is None, "walcastd stopped while the sink still "
              "held the transactions up to the end position\n%s"
              % d.describe())
        check(confirmed(c, slot) < end, "the slot is confirmed up to the "
              "end position before the sink acknowledged")
        check("reached the end position" not in d.stderr(), "walcastd "
              "began to stop before the sink acknowledged\n%s"
              % d.describe())
        t0 = time.monotonic()
        open(release, "w").close()
        rc = d.wait(timeout=30)
        dt = time.monotonic() - t0
        h.log("held: exit %s %.2f s after the release" % (rc, dt))
        check(rc == 0 and dt <= STOP_S, "after the release walcastd exited "
              "%s in %.1f s (0 within %.0f s expected)\n%s"
              % (rc, dt, STOP_S, d.describe()))
        check_confirmed(c, slot, end, d)
    finally:
        d.kill()


def case_tail(c):
    """walcast tail --slot NAME --endpos: prints up to it, confirms
    nothing."""
    slot = "endpos_tail"
    # tail writes to stdout, not to the sinks
    cfg = h.write_config(os.path.join(c.tmp, "tail.yaml"), c.dsn(), slot,
                         os.devnull)
    r = h.walcast("slot", "create", "-c", cfg)
    check(r.returncode == 0, "slot create: %s" % r.stderr)
    pos = confirmed(c, slot)
    ids = insert(c, 2000, 2, 3)
    end = c.wait_flushed()
    t0 = time.monotonic()
    r = h.walcast("tail", "-c", cfg, "--slot", slot, "--endpos",
                  h.lsn_str(end), timeout=30)
    dt = time.monotonic() - t0
    check(r.returncode == 0 and dt <= STOP_S, "walcast tail --endpos exited "
          "%s after %.1f s (0 within %.0f s expected)\nstderr:\n%s"
          % (r.returncode, dt, STOP_S, r.stderr))
    got = set()
    for line in r.stdout.splitlines():
        e = h.loads(line)
        if e.get("op") == "insert":
            got.add(int({col["name"]: col["value"]
                         for col in e["columns"]}["id"]))
    check(set(ids) <= got, "tail printed %s, expected %s"
          % (sorted(got), ids))
    check(confirmed(c, slot) == pos, "tail moved the slot")


def case_prompt():
    """The final status goes out as soon as the end position is
    acknowledged (one run may be slow on a loaded machine, not all)."""
    for kind in ("read", "passed"):
        t = DURATIONS.get(kind)
        check(t, "no run of kind %s to judge" % kind)
        check(min(t) <= PROMPT_S, "every --endpos run (%s) took more than "
              "%.1f s (%s): the stop waits for a periodic status message "
              "instead of sending it at once"
              % (kind, PROMPT_S, ", ".join("%.2f" % d for d in t)))


def case_bad_value(c, cfg):
    for bad in ("not-an-lsn", "0/0", "1/", "123456789/0"):
        r = h.run([h.binary("walcastd"), "-c", cfg, "--endpos", bad])
        check(r.returncode == EX_CONFIG and "--endpos" in r.stderr
              and bad in r.stderr,
              "walcastd --endpos %r: exit %s, stderr %r (78 and a message "
              "naming the option expected)" % (bad, r.returncode, r.stderr))
        r = h.walcast("tail", "-c", cfg, "--endpos", bad)
        check(r.returncode == EX_CONFIG and "--endpos" in r.stderr,
              "walcast tail --endpos %r: exit %s, stderr %r"
              % (bad, r.returncode, r.stderr))
    # --check only checks it
    r = h.run([h.binary("walcastd"), "-c", cfg, "--check", "--endpos",
               "0/16B3748"])
    check(r.returncode == 0, "--check --endpos: exit %s, %s"
          % (r.returncode, r.stderr))


def fill_to_page_start(c):
    """Writes a logical message that ends the WAL exactly at a page's
    start; returns pg_current_wal_insert_lsn() then (past the next page's
    header), or None when other WAL came in between every time."""
    prefix = "walcast-test.fill"
    for _ in range(20):
        pos = h.lsn_int(c.sql_value("SELECT pg_current_wal_insert_lsn()"
                                    "::text"))
        room = XLOG_BLCKSZ - pos % XLOG_BLCKSZ
        # XLogRecord (24), the main data's header (2 bytes up to 255 of
        # data, else 5), xl_logical_message (24), the prefix and its NUL
        main = room - 24 - 5
        if main <= 255:
            main = room - 24 - 2
        size = main - 24 - len(prefix) - 1
        if size < 0 or pos % XLOG_BLCKSZ < 24:
            # too little room left on this page: onto the next one
            c.sql("SELECT pg_logical_emit_message(false, '%s', 'x')"
                  % prefix)
            continue
        c.sql("SELECT pg_logical_emit_message(false, '%s', repeat('x', %d))"
              % (prefix, size))
        end = h.lsn_int(c.sql_value("SELECT pg_current_wal_insert_lsn()"
                                    "::text"))
        page = pos + room
        if end == page + (40 if page % WAL_SEGMENT == 0 else 24):
            h.wait_until(lambda: h.lsn_int(c.sql_value(
                "SELECT pg_current_wal_flush_lsn()::text")) >= page,
                timeout=10, what="the WAL flushed to %s" % h.lsn_str(page))
            return end
    return None


def case_page_header(c):
    """The WAL ends at a page's start; the end position is the insert
    position, past that page's header."""
    slot = "endpos_page"
    out = os.path.join(c.tmp, "page.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "page.yaml"), c.dsn(), slot,
                         out, status_interval=STATUS_INTERVAL)
    r = h.walcast("slot", "create", "-c", cfg)
    check(r.returncode == 0, "slot create: %s" % r.stderr)
    try:
        for attempt in range(3):
            insert(c, 900 + attempt * 10, 1, 2)
            end = fill_to_page_start(c)
            check(end is not None, "could not end the WAL at a page's "
                  "start: other WAL kept coming in")
            page = end - (40 if (end - 40) % WAL_SEGMENT == 0 else 24)
            # first to the page's start itself, then past its header
            # from there: one run reads the WAL up to the page's start,
            # the other starts there
            d = run_to(c, cfg, page, "walcastd-page-start%d" % attempt)
            check_confirmed(c, slot, page, d)
            d = run_to(c, cfg, end, "walcastd-page%d" % attempt)
            now = h.lsn_int(c.sql_value("SELECT pg_current_wal_insert_lsn()"
                                        "::text"))
            if now != end:
                # other WAL came (the background writer's): the stop
                # proves nothing, try again
                h.log("WAL moved from %s to %s during the run: again"
                      % (h.lsn_str(end), h.lsn_str(now)))
                continue
            check_confirmed(c, slot, end, d)
            check_once(inserted_ids(out), [900 + attempt * 10,
                                           901 + attempt * 10],
                       "before the page's start")
            return
        fail("other WAL came in during each of 3 runs")
    finally:
        c.sql("SELECT pg_drop_replication_slot('%s')" % slot, check=False)


def case_with_reply(c):
    slot = "endpos_reply"
    state = {"hold": None, "released": False}

    def join(msg):
        kind = msg[0:1]
        if state["released"]:
            # nothing more for poll() to see; CopyDone and the rest of
            # the stop go through
            return b"" if kind == b"d" and msg[5:6] == b"k" else msg
        if kind == b"W":  # CopyBothResponse: hold it, and what follows
            state["hold"] = msg
            return b""
        if state["hold"] is None:
            return msg
        if kind == b"d" and msg[5:6] == b"k":
            return b""
        state["hold"] += msg
        if kind == b"d" and b'"action":"C"' in msg:
            state["released"] = True
            return state["hold"]
        return b""

    proxy = h.PgProxy(c.port, join)
    try:
        out = os.path.join(c.tmp, "reply.jsonl")
        cfg = h.write_config(os.path.join(c.tmp, "reply.yaml"), proxy.dsn(),
                             slot, out, status_interval="30s")
        r = h.walcast("slot", "create", "-c", cfg)
        check(r.returncode == 0, "slot create: %s" % r.stderr)
        ids = insert(c, 90000, 1, 3)
        end = c.wait_flushed()
        run_to(c, cfg, end, "walcastd-reply")
        check(state["released"], "the proxy did not see the transaction "
              "after the reply to START_REPLICATION")
        check_once(inserted_ids(out), ids, "with the reply")
    finally:
        proxy.close()
        c.sql("SELECT pg_drop_replication_slot('%s')" % slot, check=False)


def test():
    c = h.Cluster()
    c.sql('CREATE SCHEMA "%s"; CREATE TABLE "%s".t (id int PRIMARY KEY, '
          'v text)' % (SCHEMA, SCHEMA))
    c.sql("CREATE DATABASE other")
    c.sql("CREATE TABLE other_t (id int)", dbname="other")
    out = os.path.join(c.tmp, "endpos.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "endpos.yaml"), c.dsn(), SLOT,
                         out, status_interval=STATUS_INTERVAL,
                         extra="log:\n  level: debug\n")
    r = h.walcast("slot", "create", "-c", cfg)
    check(r.returncode == 0, "slot create: %s" % r.stderr)

    cases = h.Cases()
    ends = []
    cases.run("bad_value", case_bad_value, c, cfg)
    # keepalive and passed read on from what runs leaves behind; prompt
    # judges the durations of runs and passed
    if cases.run("runs", lambda: ends.extend(case_runs(c, cfg, out)),
                 before=("keepalive", "passed", "prompt")):
        cases.run("keepalive", case_keepalive, c, cfg, out)
        cases.run("passed", case_passed, c, cfg, out, ends[0],
                  before=("prompt",))
    cases.run("prompt", case_prompt)
    cases.run("held", case_held, c)
    cases.run("tail", case_tail, c)
    cases.run("with the reply to START_REPLICATION", case_with_reply, c)
    cases.run("past a page header", case_page_header, c)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
