# SPDX-License-Identifier: MIT
"""Watermark snapshots (docs/snapshots.md) on a real PostgreSQL.

- initial: `snapshot.initial` on a first start (walcastd creates the slot)
  reads every included table in chunks while a writer inserts, updates
  (also primary keys), deletes and truncates, and another updates without
  pauses a table whose last chunk is empty; folding the file sink's
  output by key (read/insert/update set the row, delete removes it,
  truncate clears the table) gives exactly the tables' final content.
  Tables with a one-column and a two-column key, a partitioned table
  (read through its leaves, named as the stream names them); a table
  without a primary key is refused with a message naming it; an
  excluded table is not read.
- values: a read row's columns are byte for byte the columns the stream
  gives an insert of the same values, for every type of the decoder's
  tests.
- kill9: walcastd killed with SIGKILL three times during the snapshot;
  the fold still equals the tables.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, fail  # noqa: E402

ROWS = 6000
CHUNK = 250


def snapshot_yaml(chunk=CHUNK, workers=None):
    return "snapshot:\n  initial: true\n  chunk_size: %d\n" % chunk + (
        "  workers: %d\n" % workers if workers else "")


def setup_tables(c, db):
    c.sql("""
CREATE SCHEMA snap;
CREATE TABLE snap.one (id bigint PRIMARY KEY, v text, n int);
CREATE TABLE snap.two (a int, b text, v text, PRIMARY KEY (b, a));
CREATE TABLE snap.part (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE snap.part_lo PARTITION OF snap.part FOR VALUES FROM (0) TO (3000);
CREATE TABLE snap.part_hi PARTITION OF snap.part
  FOR VALUES FROM (3000) TO (100000000);
CREATE TABLE snap.exact (id int PRIMARY KEY, v text);
CREATE TABLE snap.nopk (x int, y text);
CREATE TABLE snap.skipped (id int PRIMARY KEY);
INSERT INTO snap.one SELECT g, 'v' || g, g % 97 FROM generate_series(1, %d) g;
INSERT INTO snap.two SELECT g, E'k\\t''\\\\' || (g %% 7), 'w' || g
  FROM generate_series(1, %d) g;
INSERT INTO snap.part SELECT g, 'p' || g FROM generate_series(1, %d) g;
INSERT INTO snap.exact SELECT g, 'e' || g FROM generate_series(1, {exact}) g;
INSERT INTO snap.nopk VALUES (1, 'x');
INSERT INTO snap.skipped VALUES (1);
""".replace("%d", "{n}").replace("%%", "%").format(n=ROWS, exact=2 * CHUNK),
          dbname=db)


def writer_script(rng, n):
    """SQL for a writer: inserts, updates, primary-key changes, deletes and
    a truncate, with short sleeps between them."""
    out = []
    nxt = ROWS + 1
    for i in range(n):
        k = rng.randrange(1, ROWS + 1)
        op = rng.random()
        if op < 0.25:
            out.append("INSERT INTO snap.one VALUES (%d, 'ins', 1);" % nxt)
            nxt += 1
        elif op < 0.5:
            out.append("UPDATE snap.one SET v = 'upd%d', n = n + 1 "
                       "WHERE id = %d;" % (i, k))
        elif op < 0.6:
            out.append("UPDATE snap.one SET id = id + 1000000 "
                       "WHERE id = %d;" % k)
        elif op < 0.7:
            out.append("DELETE FROM snap.one WHERE id = %d;" % k)
        elif op < 0.8:
            out.append("UPDATE snap.two SET v = 'u%d' WHERE a = %d;" % (i, k))
        elif op < 0.85:
            out.append("UPDATE snap.two SET a = a + 1000000 "
                       "WHERE a = %d;" % k)
        elif op < 0.95:
            out.append("UPDATE snap.part SET v = 'pu%d' WHERE id = %d;"
                       % (i, k))
        else:
            out.append("UPDATE snap.part SET id = id + 100000 "
                       "WHERE id = %d;" % k)
        if i == n // 2:
            out.append("TRUNCATE snap.two; INSERT INTO snap.two "
                       "SELECT g, 'after', 't' FROM generate_series(1, 50) g;")
        out.append("SELECT pg_sleep(0.01);")
    return "\n".join(out) + "\n"


def start_writer(c, db, script, name="writer"):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    path = os.path.join(c.tmp, "%s-%s.sql" % (name, db))
    with open(path, "w") as f:
        f.write(script)
    return subprocess.Popen(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
         "-p", str(c.port), "-U", "postgres", "-d", db, "-f", path],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, env=env)


KEYS = {"one": ("id",), "two": ("a", "b"), "part_lo": ("id",),
        "part_hi": ("id",), "exact": ("id",)}


def key_of(table, cols):
    d = {x["name"]: x["value"] for x in cols}
    return tuple(str(d[k]) for k in KEYS[table])


def fold(lines):
    """{table: {key: {column: value}}} from the file sink's lines."""
    tables = {}
    for e in lines:
        op = e.get("op")
        if op not in ("read", "insert", "update", "delete", "truncate"):
            continue
        t = tables.setdefault(e["table"], {})
        if op == "truncate":
            t.clear()
            continue
        if op in ("update", "delete") and e.get("identity"):
            t.pop(key_of(e["table"], e["identity"]), None)
        if op in ("read", "insert", "update"):
            t[key_of(e["table"], e["columns"])] = {
                x["name"]: str(x["value"]) for x in e["columns"]}
    return tables


def table_now(c, db, table):
    cols = {"one": ["id", "v", "n"], "two": ["a", "b", "v"],
            "part_lo": ["id", "v"], "part_hi": ["id", "v"],
            "exact": ["id", "v"]}[table]
    rows = c.sql_rows("SELECT %s FROM snap.%s" % (
        ", ".join(x + "::text" for x in cols), table), len(cols), dbname=db)
    out = {}
    for r in rows:
        d = dict(zip(cols, r))
        out[tuple(d[k] for k in KEYS[table])] = d
    return out


def check_fold(c, db, out, tables=tuple(KEYS)):
    got = fold(h.read_jsonl(out))
    reads = sum(1 for e in h.read_jsonl(out) if e.get("op") == "read")
    check(reads > 0, "no read change in the output")
    for table in tables:
        want = table_now(c, db, table)
        have = got.get(table, {})
        if have != want:
            missing = [k for k in want if k not in have][:5]
            extra = [k for k in have if k not in want][:5]
            differ = [k for k in want if k in have and have[k] != want[k]][:5]
            fail("snap.%s folded from the output is not the table: %d rows "
                 "against %d; missing %r, extra %r, different %r"
                 % (table, len(have), len(want), missing, extra,
                    [(have[k], want[k]) for k in differ]))
    return reads


def snapshot_done(d, timeout=60):
    """Waits for walcastd to say every row is delivered and confirmed."""
    end = time.monotonic() + timeout
    while "snapshot: done" not in d.stderr():
        if d.poll() is not None or time.monotonic() > end:
            fail("the snapshot did not finish\n" + d.describe())
        time.sleep(0.1)


def wait_done(c, d, slot, writer, timeout=180):
    snapshot_done(d, timeout)
    check(d.poll() is None, "walcastd exited\n" + d.describe())
    check(writer.wait(timeout=120) == 0,
          "the writer failed: %s" % writer.stderr.read().decode())
    target = c.wait_flushed()
    h.chaos_wait_confirmed(c, slot, target, procs=[d])


def case_initial(c):
    db = "initial"
    c.sql("CREATE DATABASE " + db)
    setup_tables(c, db)
    out = os.path.join(c.tmp, "initial.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "initial.yaml"), c.dsn(dbname=db),
                         "snap_initial", out,
                         filt={"tables": {"exclude": ["skipped"]}},
                         extra=snapshot_yaml())
    writer = start_writer(c, db, writer_script(random.Random(17), 600))
    # snap.exact has exactly two chunks of rows, so its last chunk reads
    # none; a writer without pauses commits while each of its chunks is
    # read (an empty chunk once took the previous chunk's snapshot for
    # its own and was read again forever)
    busy = start_writer(c, db, """
SET application_name = 'busy';
DO $$
DECLARE i int := 0;
BEGIN
  LOOP
    UPDATE snap.exact SET v = 'b' || i WHERE id = i %% %d + 1;
    COMMIT;
    IF i %% 20 = 0 THEN PERFORM pg_sleep(0.001); END IF;
    i := i + 1;
  END LOOP;
END $$;
""" % (2 * CHUNK), name="busy")
    d = h.start_walcastd(cfg, c.tmp, name="initial")
    try:
        snapshot_done(d, 180)
        c.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
              "WHERE application_name = 'busy'", dbname=db)
        busy.wait(timeout=60)
        wait_done(c, d, "snap_initial", writer)
        err = d.stderr()
        check('"snap"."nopk" has no primary key' in err,
              "the table without a primary key was not named:\n" + err)
        reads = check_fold(c, db, out)
        lines = h.read_jsonl(out)
        check(not any(e.get("table") == "skipped" for e in lines),
              "an excluded table was read")
        check(not any(e.get("prefix") == "walcast.snapshot" for e in lines),
              "a watermark reached the sink")
        check(not any(e.get("table") == "part" for e in lines),
              "the partitioned table came under its parent's name")
        last = {}
        for e in lines:
            if e.get("op") == "read":
                # the snapshot key last, but for the mark of the chunk's
                # last line (its transaction's end, docs/file-format.md)
                keys = [k for k in e if k != "last"]
                check(e.get("snapshot") in ("true", "last") and "pk" in e and
                      keys[-1] == "snapshot" and str(e["xid"]) == "0",
                      "a read line without the insert's shape: %r" % e)
                if e["snapshot"] == "last":
                    last[e["table"]] = last.get(e["table"], 0) + 1
        # each table's last chunk ends with a row the writer rarely
        # touches; at least one table must have said so, none twice
        check(last and all(n == 1 for n in last.values()),
              "snapshot \"last\" marks: %r" % last)
        h.log("initial: %d read changes, fold equals the tables" % reads)
        d.stop()
    finally:
        d.kill()
        writer.kill()
        busy.kill()


TYPES = """
CREATE TYPE snapv.mood AS ENUM ('ok', 'sad');
CREATE TABLE snapv.t (id int PRIMARY KEY, i int, s smallint, n numeric,
  f float8, r real, b bool, tx text, vc varchar(20), by bytea, j jsonb,
  js json, a int[], ta text[], ts timestamptz, tsn timestamp, d date,
  u uuid, iv interval, m snapv.mood, nn numeric, fi float8, ch char(3),
  o oid, t time, p point, mo money, x xml, bi bit(4), cidr cidr);
"""

# the text: every byte COPY's text form escapes (tab, newline, carriage
# return, backspace, form feed, vertical tab, backslash), and a backslash
# last
VALUES = ("42, -7, 1.50, 3.25e10, 0.1, true, E'tab\\there \"q\" \\\\ "
          "nl\\ncr\\r bs\\b ff\\f vt\\x0b "
          "\u00e9 \U0001F600 \\x01 \\\\', 'varchar', '\\x00ff10', "
          "'{\"b\": [1, 2], \"a\": null}', '{\"z\":1,  \"a\":2}', "
          "'{1,NULL,3}', '{\"a b\",c}', '2026-12-07 10:11:12.345+05:30', "
          "'2026-12-07 10:11:12', '2026-12-07', "
          "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day 02:03:04', 'sad', "
          "'NaN', '-Infinity', 'ab', 99, '12:34:56', '(1,2)', 12.34, "
          "'<a>x</a>', B'1010', '10.0.0.0/8'")


def case_values(c):
    db = "values"
    c.sql("CREATE DATABASE " + db)
    c.sql("CREATE SCHEMA snapv;" + TYPES, dbname=db)
    c.sql("INSERT INTO snapv.t VALUES (1, %s); "
          "INSERT INTO snapv.t (id) VALUES (3);" % VALUES, dbname=db)
    out = os.path.join(c.tmp, "values.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "values.yaml"), c.dsn(dbname=db),
                         "snap_values", out, extra=snapshot_yaml())
    d = h.start_walcastd(cfg, c.tmp, name="values")
    try:
        snapshot_done(d)
        c.sql("INSERT INTO snapv.t VALUES (2, %s); "
              "INSERT INTO snapv.t (id) VALUES (4);" % VALUES, dbname=db)
        target = c.wait_flushed()
        h.chaos_wait_confirmed(c, "snap_values", target, procs=[d])
        # the raw text of each line's columns, without the id
        raw = {}
        with open(out, encoding="utf-8") as f:
            for line in f:
                e = h.loads(line)
                if e.get("table") != "t":
                    continue
                cols = [x for x in e["columns"] if x["name"] != "id"]
                ident = int(str([x for x in e["columns"]
                                 if x["name"] == "id"][0]["value"]))
                raw[(e["op"], ident)] = (cols, e["pk"])
        for r, i in ((1, 2), (3, 4)):
            check(("read", r) in raw and ("insert", i) in raw,
                  "missing lines: %r" % sorted(raw))
            got, want = raw[("read", r)], raw[("insert", i)]
            for g, w in zip(got[0], want[0]):
                check(repr(g) == repr(w),
                      "column %s: read %r, insert %r" % (w["name"], g, w))
            check(len(got[0]) == len(want[0]) and got[1] == want[1],
                  "read and insert differ in shape: %r / %r" % (got, want))
        d.stop()
    finally:
        d.kill()


def case_keyless(c):
    db = "keyless"
    c.sql("CREATE DATABASE " + db)
    c.sql("CREATE TABLE nopk (x int, y text); "
          "INSERT INTO nopk SELECT g, 'y' || g FROM generate_series(1, 30) g",
          dbname=db)
    out = os.path.join(c.tmp, "keyless.jsonl")
    bad = h.write_config(os.path.join(c.tmp, "keyless-bad.yaml"),
                         c.dsn(dbname=db), "snap_keyless", out,
                         extra=snapshot_yaml(7) + "  keyless: sometimes\n")
    r = h.run([h.binary("walcastd"), "--check", "-c", bad])
    check(r.returncode == 78 and "invalid snapshot.keyless" in r.stderr and
          "use refuse or whole" in r.stderr,
          "keyless: sometimes was not refused: %d %s" % (r.returncode,
                                                          r.stderr))
    cfg = h.write_config(os.path.join(c.tmp, "keyless.yaml"),
                         c.dsn(dbname=db), "snap_keyless", out,
                         extra=snapshot_yaml(7) + "  keyless: whole\n")
    d = h.start_walcastd(cfg, c.tmp, name="keyless")
    try:
        snapshot_done(d)
        reads = sorted(int(str(e["columns"][0]["value"]))
                       for e in h.read_jsonl(out) if e.get("op") == "read")
        check(reads == list(range(1, 31)),
              "keyless: whole read %r, not the 30 rows" % reads)
        check("cannot be read in chunks" not in d.stderr(), d.stderr())
        d.stop()
    finally:
        d.kill()


def metric(port, name):
    """One unlabelled sample of walcastd's /metrics."""
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                  timeout=5).read().decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    fail("no %s in /metrics:\n%s" % (name, body))


def case_torn(c):
    """A torn read (the stream read a transaction the chunk's read did not
    see) reads the chunk again with new watermarks, and gives up the chunk
    read ahead, whose rows would otherwise come first.  The race cannot be
    made to happen on demand, so WALCAST_TEST_TORN=n judges the n-th high
    watermark torn: the 2nd, reached while the 3rd chunk is read ahead
    (its read goes in one query with the 2nd's high watermark).  Every row
    is read once, in key order, and /metrics counts the read again."""
    db = "torn"
    rows, chunk = 1500, 250
    c.sql("CREATE DATABASE " + db)
    c.sql("CREATE TABLE t (id int PRIMARY KEY, v text); "
          "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, %d) g"
          % rows, dbname=db)
    out = os.path.join(c.tmp, "torn.jsonl")
    port = h.free_port()
    cfg = h.write_config(os.path.join(c.tmp, "torn.yaml"),
                         c.dsn(dbname=db), "snap_torn", out,
                         extra=snapshot_yaml(chunk) +
                         'metrics:\n  listen: "127.0.0.1:%d"\n' % port)
    os.environ["WALCAST_TEST_TORN"] = "2"
    try:
        d = h.start_walcastd(cfg, c.tmp, name="torn")
    finally:
        del os.environ["WALCAST_TEST_TORN"]
    try:
        snapshot_done(d)
        check("WALCAST_TEST_TORN=2" in d.stderr(), d.stderr())
        reads = [int(str(e["columns"][0]["value"]))
                 for e in h.read_jsonl(out) if e.get("op") == "read"]
        check(reads == list(range(1, rows + 1)),
              "torn: %d rows read, not 1..%d once each in order; first "
              "out of place at %r" % (
                  len(reads), rows,
                  next((i for i, k in enumerate(reads) if k != i + 1),
                       None)))
        n = metric(port, "walcast_snapshot_chunks_reread_total")
        check(n == 1, "walcast_snapshot_chunks_reread_total is %r, not 1"
              % n)
        d.stop()
    finally:
        d.kill()


def case_plugins(c):
    """A plugin connected only to insert gets nothing of a snapshot; one
    connected to read, snapshot_begin and snapshot_end gets every row
    between its table's begin and end, as the file sink does."""
    db = "plugins"
    c.sql("CREATE DATABASE " + db)
    c.sql("CREATE TABLE a (id int PRIMARY KEY, v text); "
          "CREATE TABLE b (k text PRIMARY KEY); "
          "INSERT INTO a SELECT g, 'a' || g FROM generate_series(1, 95) g; "
          "INSERT INTO b SELECT 'k' || g FROM generate_series(1, 30) g",
          dbname=db)
    out = os.path.join(c.tmp, "plugins.jsonl")
    only_insert = os.path.join(c.tmp, "rec-insert.jsonl")
    snap = os.path.join(c.tmp, "rec-snap.jsonl")
    cfg = h.write_config(
        os.path.join(c.tmp, "plugins.yaml"), c.dsn(dbname=db),
        "snap_plugins", out,
        extra=h.recorder_sink_yaml({"out": only_insert, "kinds": "insert"}) +
        h.recorder_sink_yaml({"out": snap, "kinds":
                              "read,snapshot_begin,snapshot_end"}) +
        snapshot_yaml(20))
    d = h.start_walcastd(cfg, c.tmp, name="plugins")
    try:
        snapshot_done(d)
        c.sql("INSERT INTO a VALUES (1000, 'streamed')", dbname=db)
        h.chaos_wait_confirmed(c, "snap_plugins", c.wait_flushed(), procs=[d])
        ins = h.read_jsonl(only_insert)
        check([e["kind"] for e in ins] == ["insert"],
              "the insert-only plugin got %r" % [e["kind"] for e in ins])
        got = h.read_jsonl(snap)
        for t, n in (("a", 95), ("b", 30)):
            kinds = [e["kind"] for e in got if e["table"] == t]
            check(kinds == ["snapshot_begin"] + ["read"] * n +
                  ["snapshot_end"],
                  "table %s: %s" % (t, kinds[:3] + ["..."] + kinds[-3:]))
        reads = [e for e in h.read_jsonl(out) if e.get("op") == "read"]
        check(len(reads) == 125, "the file sink got %d reads" % len(reads))
        check(sum(1 for e in reads if e["snapshot"] == "last") == 2,
              "not one last row per table")
        d.stop()
    finally:
        d.kill()


def case_tail(c):
    """walcast tail on a temporary slot prints a snapshot's read lines
    first when the configuration asks for the initial snapshot."""
    db = "tail"
    c.sql("CREATE DATABASE " + db)
    c.sql("CREATE TABLE a (id int PRIMARY KEY, v text); "
          "INSERT INTO a SELECT g, 'a' || g FROM generate_series(1, 40) g",
          dbname=db)
    cfg = h.write_config(os.path.join(c.tmp, "tail.yaml"), c.dsn(dbname=db),
                         "unused", os.path.join(c.tmp, "tail-unused.jsonl"),
                         extra=snapshot_yaml(15))
    p = h.Proc([h.binary("walcast"), "tail", "-c", cfg, "--limit", "40"],
               c.tmp, name="tail")
    rc = p.wait(timeout=60)
    lines = [h.loads(x) for x in p.stdout().splitlines() if x]
    check(rc == 0 and [e["op"] for e in lines] == ["read"] * 40 and
          [int(str(e["columns"][0]["value"])) for e in lines] ==
          list(range(1, 41)) and lines[-1]["snapshot"] == "last",
          "walcast tail printed %r\n%s" % ([e.get("op") for e in lines],
                                            p.describe()))


def snapshot_cli(*args):
    return h.walcast("snapshot", *args)


def case_adhoc(c):
    """walcast snapshot while walcastd streams: refusals, two requests
    queue, status, and the fold equals the tables; then cancel."""
    db = "adhoc"
    c.sql("CREATE DATABASE " + db)
    setup_tables(c, db)
    out = os.path.join(c.tmp, "adhoc.jsonl")
    state = os.path.join(c.tmp, "adhoc-state")
    os.mkdir(state)
    cfg = h.write_config(os.path.join(c.tmp, "adhoc.yaml"), c.dsn(dbname=db),
                         "snap_adhoc", out,
                         filt={"tables": {"exclude": ["skipped"]}},
                         extra="snapshot:\n  chunk_size: 200\n"
                         "state_dir: %s\n" % h.yq(state))
    d = h.start_walcastd(cfg, c.tmp, name="adhoc")
    try:
        # refused: a table that does not exist, one the filter drops, one
        # without a primary key; nothing is written into the WAL
        for pat, words in (("snap.nothere", "no table matches"),
                           ("snap.skipped", "is not included by the filter"),
                           ("snap.nopk", "has no primary key")):
            r = snapshot_cli("-c", cfg, pat)
            check(r.returncode == 1 and words in r.stderr,
                  "walcast snapshot %s: exit %d, %s" % (pat, r.returncode,
                                                        r.stderr))
        r = snapshot_cli("status", "-c", cfg)
        check(r.returncode == 0 and "snapshot: none" in r.stdout,
              "status before: %s %s" % (r.stdout, r.stderr))
        c.sql("ANALYZE", dbname=db)  # reltuples: the status's estimate
        writer = start_writer(c, db, writer_script(random.Random(5), 600))
        r1 = snapshot_cli("-c", cfg, "snap.one", "snap.tw?")
        r2 = snapshot_cli("-c", cfg, "snap.part_*")
        check(r1.returncode == 0 and r2.returncode == 0 and
              'table: "snap"."two"' in r1.stdout,
              "requests: %s %s %s %s" % (r1.stdout, r1.stderr, r2.stdout,
                                         r2.stderr))
        h.wait_until(lambda: "snapshot_table" in snapshot_cli(
            "status", "-c", cfg).stdout or "snapshot: done" in d.stderr(),
            timeout=60, what="the status to show the snapshot")
        st = snapshot_cli("status", "-c", cfg).stdout
        h.log("status while running:\n" + st)
        check("snapshot: done" in d.stderr() or
              ("snapshot: running" in st and "(of about" in st),
              "status: " + st)
        wait_done(c, d, "snap_adhoc", writer)
        check(d.stderr().count("snapshot: requested") == 2,
              "two requests were not taken:\n" + d.stderr())
        # snap.exact was not asked for
        reads = check_fold(c, db, out, ("one", "two", "part_lo", "part_hi"))
        h.log("ad-hoc: %d read changes, fold equals the tables" % reads)
        st = h.walcast("slot", "status", "-c", cfg).stdout
        check("snapshot: none" in st, "slot status after: " + st)

        # cancel: a big table, small chunks (walcastd started again with
        # chunk_size 10); cancelled on the way
        d.stop()
        cfg = h.write_config(os.path.join(c.tmp, "adhoc.yaml"),
                             c.dsn(dbname=db), "snap_adhoc", out,
                             filt={"tables": {"exclude": ["skipped"]}},
                             extra="snapshot:\n  chunk_size: 10\n"
                             "state_dir: %s\n" % h.yq(state))
        d = h.start_walcastd(cfg, c.tmp, name="adhoc-cancel")
        c.sql("CREATE TABLE snap.big (id int PRIMARY KEY); INSERT INTO "
              "snap.big SELECT generate_series(1, 200000)", dbname=db)
        r = snapshot_cli("-c", cfg, "snap.big")
        check(r.returncode == 0, r.stderr)
        h.wait_until(lambda: '"snap"."big" reading' in snapshot_cli(
            "status", "-c", cfg).stdout, timeout=60, interval=0.05,
            what="the big table's snapshot to run")
        r = snapshot_cli("cancel", "-c", cfg)
        check(r.returncode == 0, r.stderr)
        h.wait_until(lambda: "snapshot: cancelled" in d.stderr(), timeout=30,
                     what="the cancel to be read")

        def big_rows():
            with open(out, encoding="utf-8") as f:
                return f.read().count(
                    '{"op":"read","schema":"snap","table":"big"')
        time.sleep(2)
        n1 = big_rows()
        time.sleep(2)
        n2 = big_rows()
        check(0 < n1 == n2 < 200000,
              "the cancelled snapshot went on: %d then %d rows\n%s"
              % (n1, n2, d.stderr()))
        h.log("cancelled after %d of 200000 rows" % n1)
        check("snapshot: none" in snapshot_cli("status", "-c", cfg).stdout,
              "status after cancel")
        d.stop()
    finally:
        d.kill()


def read_count(out):
    """The read changes in the file sink (cheap: polled while the snapshot
    runs)."""
    try:
        with open(out, "rb") as f:
            return f.read().count(b'{"op":"read",')
    except FileNotFoundError:
        return 0


def interleaved(lines):
    """Did the read changes of two tables interleave (tables read at the
    same time)?  One at a time, each table's reads are one run."""
    runs, last = {}, None
    for e in lines:
        if e.get("op") != "read":
            continue
        if e["table"] != last:
            runs[e["table"]] = runs.get(e["table"], 0) + 1
            last = e["table"]
    return any(n > 1 for n in runs.values())


def case_workers(c):
    """snapshot.workers: 2 under a writer: two connections read different
    tables at once, and the fold still equals the tables."""
    db = "workers"
    c.sql("CREATE DATABASE " + db)
    setup_tables(c, db)
    out = os.path.join(c.tmp, "workers.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "workers.yaml"),
                         c.dsn(dbname=db), "snap_workers", out,
                         filt={"tables": {"exclude": ["skipped", "nopk"]}},
                         extra=snapshot_yaml(workers=2))
    bad = h.write_config(os.path.join(c.tmp, "workers-bad.yaml"),
                         c.dsn(dbname=db), "snap_workers", out,
                         extra=snapshot_yaml(workers=17))
    r = h.run([h.binary("walcastd"), "--check", "-c", bad])
    check(r.returncode == 78 and "workers" in r.stderr,
          "workers: 17 was not refused: %d %s" % (r.returncode, r.stderr))
    writer = start_writer(c, db, writer_script(random.Random(23), 600))
    d = h.start_walcastd(cfg, c.tmp, name="workers")
    try:
        wait_done(c, d, "snap_workers", writer)
        check("2 tables at once" in d.stderr(),
              "the start did not say 2 tables at once:\n" + d.stderr())
        check_fold(c, db, out)
        lines = h.read_jsonl(out)
        check(interleaved(lines), "the tables were read one after the other")
        last = {}
        for e in lines:
            if e.get("op") == "read" and e["snapshot"] == "last":
                last[e["table"]] = last.get(e["table"], 0) + 1
        # a table's last row may be one the writer touched (then the
        # mark is not there), but no table has two
        check(last and all(n == 1 for n in last.values()),
              "snapshot \"last\" marks: %r" % last)
        d.stop()
    finally:
        d.kill()
        writer.kill()


def progress_tables(state, db):
    """The state of each table in the snapshot's progress file."""
    try:
        with open(os.path.join(state, "snap_%s.snapshot" % db)) as f:
            return [x.split(" ", 2)[2] for x in f.read().split("\n")
                    if x.startswith("table=")]
    except FileNotFoundError:
        return []


def case_kill9(c, db="kill9", workers=None):
    c.sql("CREATE DATABASE " + db)
    setup_tables(c, db)
    out = os.path.join(c.tmp, "%s.jsonl" % db)
    state = os.path.join(c.tmp, "%s-state" % db)
    os.mkdir(state)
    cfg = h.write_config(os.path.join(c.tmp, "%s.yaml" % db),
                         c.dsn(dbname=db), "snap_" + db, out,
                         filt={"tables": {"exclude": ["skipped", "nopk"]}},
                         extra=snapshot_yaml(5, workers) +
                         "state_dir: %s\n" % h.yq(state))
    rng = random.Random(9)
    writer = start_writer(c, db, writer_script(rng, 1500))
    d = h.start_walcastd(cfg, c.tmp, name="%s-0" % db)
    at_once = 0
    try:
        reads = 0
        for i in range(3):
            # a kill once the snapshot went on by some chunks (small
            # ones: it lasts long enough on a fast machine too), at a
            # random moment after that
            before = reads
            h.wait_until(lambda: read_count(out) >= before + 30,
                         timeout=60, interval=0.01,
                         what="30 more read changes")
            # and a chunk confirmed since the last kill in the progress
            # (with workers, of two tables read at once)
            seen = progress_tables(state, db)
            h.wait_until(lambda: progress_tables(state, db) != seen and
                         sum(t.startswith("at ") for t in
                             progress_tables(state, db)) >= (2 if workers
                                                             else 1),
                         timeout=60, interval=0.01,
                         what="a chunk confirmed in the progress")
            time.sleep(rng.random() * 0.05)
            reads = read_count(out)
            check("snapshot: done" not in d.stderr(),
                  "the snapshot ended before kill %d" % (i + 1))
            d.send(signal.SIGKILL)
            d.wait()
            h.log("kill %d after %d read changes" % (i + 1, reads))
            check(os.path.exists(os.path.join(state,
                                              "snap_%s.snapshot" % db)),
                  "no snapshot progress in the state directory")
            # the confirmed chunks are in it: the restart resumes after
            # them, not from the start
            tables = progress_tables(state, db)
            h.log("progress after kill %d: %s" % (i + 1, tables))
            check(any(t == "done" or t.startswith("at ") for t in tables),
                  "no confirmed chunk in the progress after kill %d: %r"
                  % (i + 1, tables))
            at_once = max(at_once, sum(t.startswith("at ") for t in tables))
            h.chaos_wait_slot_free(c, "snap_" + db)
            d = h.start_walcastd(cfg, c.tmp, name="%s-%d" % (db, i + 1))
            check("snapshot: resuming after the last confirmed chunk"
                  in d.stderr(), "the snapshot did not resume:\n" +
                  d.stderr())
        wait_done(c, d, "snap_" + db, writer)
        check_fold(c, db, out)
        if workers:
            check(interleaved(h.read_jsonl(out)),
                  "the tables were read one after the other")
            # each of the tables read at once resumed from its own key
            check(at_once >= 2, "never two tables in progress at a kill")
        d.stop()
    finally:
        d.kill()
        writer.kill()


def case_pg_restart(c):
    """PostgreSQL restarted (fast shutdown) during the snapshot: walcastd
    reconnects, the snapshot goes on from the last confirmed chunk, and
    the fold still equals the tables."""
    db = "pgrestart"
    c.sql("CREATE DATABASE " + db)
    setup_tables(c, db)
    out = os.path.join(c.tmp, "pgrestart.jsonl")
    state = os.path.join(c.tmp, "pgrestart-state")
    os.mkdir(state)
    cfg = h.write_config(os.path.join(c.tmp, "pgrestart.yaml"),
                         c.dsn(dbname=db), "snap_pgrestart", out,
                         filt={"tables": {"exclude": ["skipped", "nopk"]}},
                         extra=snapshot_yaml(5) +
                         "state_dir: %s\n" % h.yq(state))
    d = h.start_walcastd(cfg, c.tmp, name="pgrestart")
    try:
        h.wait_until(lambda: read_count(out) >= 30, timeout=60,
                     interval=0.01, what="30 read changes")
        reads = read_count(out)
        check(0 < reads and "snapshot: done" not in d.stderr(),
              "not in the middle of the snapshot: %d reads" % reads)
        c.restart()
        h.log("PostgreSQL restarted after %d read changes" % reads)
        # the writer runs after the restart, while the snapshot goes on
        writer = start_writer(c, db, writer_script(random.Random(3), 400))
        wait_done(c, d, "snap_pgrestart", writer)
        check_fold(c, db, out)
        d.stop()
    finally:
        d.kill()


def kafka_fold(boot, topics, keys):
    """{table: {key: row}} from the Kafka topics (one partition each):
    c, r and u set the row under the message's key (a u whose before has
    another key removes that one), d removes it, t clears the table."""
    got = {}
    for topic, table in topics:
        p = subprocess.run(
            [h.kcat_path(), "-b", boot, "-C", "-t", topic, "-o", "beginning",
             "-e", "-q", "-f", "%s\n"], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, timeout=180)
        check(p.returncode == 0, "kcat: %s" % p.stderr.decode()[-2000:])
        t = got.setdefault(table, {})
        for line in p.stdout.split(b"\n"):
            if not line or line in (b"NULL", b"null"):
                continue
            v = json.loads(line)
            if v is None:
                continue
            op = v["op"]

            def key(row):
                return tuple(str(row[k]) for k in keys[table])
            if op == "t":
                t.clear()
            elif op == "d":
                t.pop(key(v["before"]), None)
            else:
                check(op in ("c", "r", "u"), "op %r" % op)
                check(v["source"]["snapshot"] ==
                      ("false" if op != "r" else v["source"]["snapshot"]) and
                      (op != "r" or v["source"]["snapshot"] in
                       ("true", "last")),
                      "source.snapshot %r for op %s" % (v["source"], op))
                if op == "u" and v["before"] and \
                        key(v["before"]) != key(v["after"]):
                    t.pop(key(v["before"]), None)
                t[key(v["after"])] = {k: str(x) for k, x in
                                      v["after"].items()}
    return got


def case_kafka(c):
    """The initial snapshot under a writer through the Kafka sink: the
    topics read back with kcat fold to the tables."""
    db = "kafka"
    c.sql("CREATE DATABASE " + db)
    setup_tables(c, db)
    mock = h.KafkaMock(c.tmp, brokers=1)
    topics = []
    for table in KEYS:
        topic = "walcast.snap." + table
        mock.cmd("topic %s 1" % topic)
        topics.append((topic, table))
    cfg = h.write_config(os.path.join(c.tmp, "kafka.yaml"), c.dsn(dbname=db),
                         "snap_kafka", None,
                         filt={"tables": {"exclude": ["skipped", "nopk"]}},
                         extra="sinks:\n" + h.kafka_sink_yaml(mock.bootstrap) +
                         snapshot_yaml())
    writer = start_writer(c, db, writer_script(random.Random(23), 600))
    d = h.start_walcastd(cfg, c.tmp, name="kafka")
    try:
        wait_done(c, d, "snap_kafka", writer)
        got = kafka_fold(mock.bootstrap, topics, KEYS)
        for table in KEYS:
            want = table_now(c, "kafka", table)
            have = got.get(table, {})
            check(have == want,
                  "Kafka topic of snap.%s folds to %d rows, the table has "
                  "%d; e.g. missing %r, extra %r" % (
                      table, len(have), len(want),
                      [k for k in want if k not in have][:3],
                      [k for k in have if k not in want][:3]))
        d.stop()
    finally:
        d.kill()


def test():
    c = h.Cluster()
    cases = h.Cases()
    cases.run("initial snapshot under a writer folds to the tables",
              case_initial, c)
    cases.run("read values are byte-identical to inserts", case_values, c)
    cases.run("keyless: whole reads a table without a key in one pass",
              case_keyless, c)
    cases.run("a torn read is read again, the chunk read ahead given up",
              case_torn, c)
    cases.run("plugins: read and snapshot_begin/end, nothing for insert",
              case_plugins, c)
    cases.run("walcast tail prints the initial snapshot", case_tail, c)
    cases.run("ad-hoc requests under a writer, refusals, queue, cancel",
              case_adhoc, c)
    cases.run("kill -9 three times during the snapshot", case_kill9, c)
    cases.run("workers: 2 under a writer fold to the tables", case_workers,
              c)
    cases.run("workers: 2, kill -9 three times during the snapshot",
              lambda c: case_kill9(c, "kill9w", 2), c)
    cases.run("PostgreSQL restarted during the snapshot", case_pg_restart,
              c)
    cases.run("Kafka: the topics fold to the tables", case_kafka, c)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
