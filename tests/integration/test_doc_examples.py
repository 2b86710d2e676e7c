# SPDX-License-Identifier: MIT
"""The example lines in the docs are what walcast writes.

Runs the workload the docs' examples describe on a real PostgreSQL through
walcastd's file sink (and the jsonl plugin, for docs/plugins.md), then
compares every example line of README.md, docs/file-format.md and the
jsonl section of docs/plugins.md with the real line it shows: the same keys
in the same order, the same values, and, for what differs from run to run
(positions, transaction ids, times, the OIDs of user-defined types), the
same JSON kind and format (an LSN as "X/X" in upper-case hex, a commit
time with six fraction digits, ...).

An example that matches no real line fails the test with the nearest real
line and where the two differ: fix the example (or the code).

docs/kafka.md's complete envelope examples (key, headers, value) are
compared the same way with what the Kafka sink sends to the mock cluster,
when the Kafka sink is built.  Further cases hold what the docs say about
the same run: the start-up warning names every type whose NaN and
Infinity wal2json 2.5 sends as null; a filter naming a partitioned
table's parent matches nothing; a kill -9 repeats everything since the
last status message from the server, and the file sink writes none of
it twice; config/postgresql.conf sets only what every server
knows.
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, fail  # noqa: E402

# the cases check one shared run: one ctest entry (wctest.cases)
CASES_ONE_ENTRY = True

SRC = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# values that differ from run to run: compared by kind and format only
VOLATILE = {"lsn", "xid", "commit_lsn", "end_lsn", "commit_time",
            "commit_time_us", "txId", "ts_ms"}
FIRST_USER_OID = 16384

LSN_RE = re.compile(r"^[0-9A-F]{1,8}/[0-9A-F]{1,8}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.(\d+))?Z$")

# A value that does not compress, short enough for a btree entry and long
# enough to be stored out of line: an example shows it as "…" (LONG).
BIG = "".join("%08x" % ((i * 2654435761) & 0xffffffff) for i in range(300))
LONG = "\u2026"

# One transaction per statement unless grouped; the statements that give
# the examples.  \x, quotes and backslashes as the examples show them.
WORKLOAD = [
    # README.md
    'CREATE SCHEMA "town6-govikon";'
    'CREATE TABLE "town6-govikon".tickets (id bigint PRIMARY KEY, '
    '  title text);'
    # docs/file-format.md
    'CREATE TABLE "town6-govikon".t (id bigint PRIMARY KEY, v text, '
    '  b bytea);'
    'CREATE TABLE public.t (id int);'
    'CREATE TABLE public.measure (id int PRIMARY KEY, r real, '
    '  d double precision, n numeric);'
    'CREATE DOMAIN public.positive AS integer CHECK (VALUE > 0);'
    'CREATE DOMAIN public.flag AS boolean;'
    'CREATE TABLE public.counted (id int PRIMARY KEY, n positive, '
    '  ok flag);'
    'CREATE TABLE public.events (id int, day date, PRIMARY KEY (id, day)) '
    '  PARTITION BY RANGE (day);'
    "CREATE TABLE public.events_2026 PARTITION OF public.events "
    "  FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');"
    # docs/plugins.md (the jsonl plugin)
    'CREATE TABLE "town6-govikon".invoice (id bigint PRIMARY KEY, '
    '  paid boolean);'
    'CREATE TABLE "town6-govikon".draft (id int);'
    # docs/file-format.md, unchanged TOASTed values: t goes out of line
    'CREATE TABLE public.r2 (a int NOT NULL, t text NOT NULL, c int);'
    'ALTER TABLE public.r2 ALTER t SET STORAGE EXTERNAL;'
    'CREATE UNIQUE INDEX r2_at ON public.r2 (a, t);'
    'ALTER TABLE public.r2 REPLICA IDENTITY USING INDEX r2_at;',
    "INSERT INTO \"town6-govikon\".tickets VALUES (1, 'hello')",
    "INSERT INTO \"town6-govikon\".t VALUES "
    "  (1, E'a\"b\\\\c\\n\u00e9', '\\xdead')",
    "INSERT INTO \"town6-govikon\".t VALUES (2, 'y', '\\xbeef')",
    "UPDATE \"town6-govikon\".t SET id = 3, v = 'x' WHERE id = 1",
    "UPDATE \"town6-govikon\".t SET v = 'z' WHERE id = 3",
    "DELETE FROM \"town6-govikon\".t WHERE id = 2",
    "TRUNCATE public.t",
    "SELECT pg_logical_emit_message(false, 'walcast', 'hi')",
    "SELECT pg_logical_emit_message(true, 'walcast', 'tx')",
    "SELECT pg_logical_emit_message(false, 'bin', '\\xfe80'::bytea)",
    "INSERT INTO public.measure VALUES "
    "  (1, 'NaN', '-Infinity', 'Infinity')",
    "INSERT INTO public.counted VALUES (1, 5, true)",
    "INSERT INTO public.events VALUES (1, '2026-11-25')",
    "INSERT INTO public.r2 VALUES (1, '%s', 7)" % BIG,
    "UPDATE public.r2 SET a = 2",
    "INSERT INTO \"town6-govikon\".invoice VALUES (2, false), (3, false);"
    "INSERT INTO \"town6-govikon\".draft VALUES (1)",
    "BEGIN;"
    "INSERT INTO \"town6-govikon\".invoice VALUES (1, false);"
    "UPDATE \"town6-govikon\".invoice SET paid = true WHERE id = 1;"
    # two statements, one bulk_delete: consecutive deletes of a table
    "DELETE FROM \"town6-govikon\".invoice WHERE id = 2;"
    "DELETE FROM \"town6-govikon\".invoice WHERE id = 3;"
    "TRUNCATE \"town6-govikon\".draft;"
    "SELECT pg_logical_emit_message(true, 'audit', 'invoices paid');"
    "COMMIT",
]


def examples(path, section=None):
    """(line number, text) of each line of the ```json blocks of a doc,
    or of those under the heading `section` only."""
    out, in_json, in_section = [], False, section is None
    with open(os.path.join(SRC, path), encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not in_json and section is not None and line.startswith("#"):
                in_section = line.lstrip("#").strip() == section
            if line.startswith("```"):
                in_json = not in_json and line.strip() == "```json"
                continue
            if in_json and in_section and line.strip():
                out.append((n, line))
    return out


def kind(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, h.RawNum):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def fmt(v):
    """The format of a value that differs run to run."""
    if isinstance(v, str) and not isinstance(v, h.RawNum):
        if LSN_RE.match(v):
            return "LSN X/X"
        m = TIME_RE.match(v)
        if m:
            return "RFC 3339 UTC with %d fraction digits" % len(
                m.group(1) or "")
        return "string %r" % v
    if isinstance(v, h.RawNum):
        return "integer" if re.match(r"^-?\d+$", v) else "number %s" % v
    return kind(v)


def unqualified(name):
    """A user-defined type's name with any schema qualification removed:
    whether wal2json qualifies it depends on the walsender's search_path."""
    return re.sub(r'^(?:"(?:[^"]|"")*"|[^."]+)\.', "", name)


def diff(ex, real, path="", user_type=False):
    """Where an example value and a real one differ, or None."""
    if kind(ex) != kind(real):
        return "%s: %s in the example, %s in the output (%r)" % (
            path or "line", kind(ex), kind(real), real)
    if isinstance(ex, dict):
        if list(ex) != list(real):
            return "%s: keys %s in the example, %s in the output" % (
                path or "line", list(ex), list(real))
        user = (isinstance(real.get("typeoid"), h.RawNum)
                and int(real["typeoid"]) >= FIRST_USER_OID)
        for k in ex:
            p = "%s.%s" % (path, k) if path else k
            if k in VOLATILE or (k == "typeoid" and user):
                if fmt(ex[k]) != fmt(real[k]):
                    return "%s: %s in the example, %s in the output" % (
                        p, fmt(ex[k]), fmt(real[k]))
                continue
            d = diff(ex[k], real[k], p, user and k == "type")
            if d:
                return d
        return None
    if isinstance(ex, list):
        if len(ex) != len(real):
            return "%s: %d entries in the example, %d in the output" % (
                path, len(ex), len(real))
        for i, (a, b) in enumerate(zip(ex, real)):
            d = diff(a, b, "%s[%d]" % (path, i))
            if d:
                return d
        return None
    if user_type and unqualified(ex) == unqualified(real):
        return None
    if ex == LONG and isinstance(real, str) and len(real) > 2000:
        return None
    if ex != real:
        return "%s: %r in the example, %r in the output" % (path, ex, real)
    return None


def ident(e):
    return (e.get("op") or e.get("signal"), e.get("schema"), e.get("table"),
            e.get("prefix"))


def check_examples(doc, lines, real):
    """Every example must equal one real line but for what varies."""
    bad = []
    for n, text in lines:
        try:
            ex = h.loads(text)
        except ValueError as e:
            bad.append("%s:%d: not JSON (%s)" % (doc, n, e))
            continue
        cands = [r for r in real if ident(r[0]) == ident(ex)]
        diffs = [diff(ex, r[0]) for r in cands]
        if None in diffs:
            continue
        if not cands:
            bad.append("%s:%d: no %s line in the output at all"
                       % (doc, n, "/".join(str(x) for x in ident(ex) if x)))
        else:
            bad.append("%s:%d: %s\n    example: %s\n    nearest: %s" % (
                doc, n, min(diffs, key=len), text,
                cands[diffs.index(min(diffs, key=len))][1][:600]))
    check(not bad, "%d example line(s) differ from what walcast writes:\n"
          % len(bad) + "\n".join(bad))
    h.log("%s: %d example lines match" % (doc, len(lines)))


def read_lines(path):
    """(object, text) of each line of a JSON-lines file."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if not text:
        return []
    check(text.endswith("\n"), "%s does not end with a newline" % path)
    return [(h.loads(line), line) for line in text.split("\n")[:-1]]


def check_float_warning(stderr):
    """walcastd's start-up warning names every type whose NaN and
    Infinity arrive as null (this server's wal2json 2.5 lacks the
    option that keeps them)."""
    line = [l for l in stderr.splitlines()
            if "numeric-data-types-as-string" in l]
    check(line, "no warning about numeric-data-types-as-string:\n" + stderr)
    for t in ("real", "double precision", "numeric"):
        check(t in line[0], "the warning does not name %s: %s"
              % (t, line[0]))


def check_partition_filter(parent, leaf):
    """A filter naming the parent of a partitioned table matches nothing:
    changes arrive under the leaf partition's name.  (Messages belong to
    no table and pass table filters.)"""
    parent = [t for e, t in parent if e["op"] != "message"]
    check(not parent, "a filter on the parent passed %d changes: %s"
          % (len(parent), parent[:2]))
    tables = [(e["schema"], e["table"]) for e, _ in leaf
              if e["op"] != "message"]
    check(tables == [("public", "events_2026")],
          "a filter on the partitions: %r" % tables)


def check_kill9_repeats(c):
    """A kill -9 makes the server replay everything after the last status
    message, not only what was in flight (README.md, Delivery): with a
    long status_interval, transactions the file sink wrote and synced
    seconds before the kill come again from the server.  The file sink
    keeps its position in the file (docs/file-format.md, Duplicates), so
    none of them is written twice."""
    for doc in ("README.md", "docs/reliability.md"):
        with open(os.path.join(SRC, doc)) as f:
            text = " ".join(f.read().split())
        check("at most what was in flight" not in text
              and "at most the ones that were in flight" not in text,
              "%s still says a crash repeats at most what was in flight"
              % doc)
    out = os.path.join(c.tmp, "kill9.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "kill9.yaml"), c.dsn(),
                         "kill9", out, status_interval="1h")
    d = h.start_walcastd(cfg, c.tmp, name="kill9-a")
    for i in range(3):
        c.sql("INSERT INTO \"town6-govikon\".tickets VALUES (%d, 'k')"
              % (100 + i))
    cnt = h.LineCounter(out)
    h.wait_until(lambda: cnt() >= 3, timeout=30, what="3 lines")
    h.time.sleep(2)   # written and synced long since: nothing in flight
    first = read_lines(out)
    d.kill()
    confirmed = h.lsn_int(c.slot("kill9")["confirmed_flush_lsn"])
    again = [t for e, t in first if h.lsn_int(e["end_lsn"]) > confirmed]
    check(again, "walcastd confirmed all 3 transactions within 2 s although "
          "its status_interval is 1h: the case shows nothing")
    d = h.start_walcastd(cfg, c.tmp, name="kill9-b")
    c.sql("INSERT INTO \"town6-govikon\".tickets VALUES (103, 'k')")
    h.wait_until(lambda: cnt() >= 4, timeout=30, what="the next change")
    d.stop()
    lines = read_lines(out)
    check(len(lines) == 4 and [t for _, t in lines[:3]] ==
          [t for _, t in first] and
          int(lines[3][0]["columns"][0]["value"]) == 103,
          "after kill -9 the server replays the %d transactions after the "
          "confirmed position; the file must hold them once, then the next "
          "one: got %r" % (len(again), [t for _, t in lines]))


KAFKA_TOPIC = "walcast.town6-govikon.tickets"
# docs/kafka.md, "Examples", in database "app"
KAFKA_SETUP = ('CREATE SCHEMA "town6-govikon";'
               'CREATE TABLE "town6-govikon".tickets (id bigint PRIMARY KEY, '
               '  title text, done boolean);'
               "INSERT INTO \"town6-govikon\".tickets VALUES (2, 'b', NULL)")
KAFKA_WORKLOAD = [
    "INSERT INTO \"town6-govikon\".tickets VALUES (1, 'hello', NULL)",
    "UPDATE \"town6-govikon\".tickets SET done = true WHERE id = 1",
    "DELETE FROM \"town6-govikon\".tickets WHERE id = 1",
    "UPDATE \"town6-govikon\".tickets SET id = 3 WHERE id = 2",
    "TRUNCATE \"town6-govikon\".tickets",
]


def kafka_examples():
    """(line, key, headers, value) of each complete message example in
    docs/kafka.md's Examples section: a `key`, `headers`, `value` triple
    in a plain code block.  Abbreviated ones (with "...") are left out."""
    out, fence, cur, section = [], False, None, False
    with open(os.path.join(SRC, "docs", "kafka.md"), encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("#"):
                section = line.lstrip("#").strip() == "Examples"
            if line.startswith("```"):
                fence = not fence
                continue
            if not (fence and section):
                continue
            m = re.match(r"^(key|headers|value)\s+(.*)$", line)
            if not m:
                continue
            if m.group(1) == "key":
                cur = {"line": n, "key": m.group(2)}
            elif cur is not None:
                cur[m.group(1)] = m.group(2)
                if m.group(1) == "value":
                    if "..." not in line and "headers" in cur:
                        out.append(cur)
                    cur = None
    return out


def check_kafka_examples(real):
    """docs/kafka.md's envelope examples against the messages the Kafka
    sink produced: the key as text, the headers by name and form, the
    value as the file sink's lines are compared."""
    examples = kafka_examples()
    check(len(examples) >= 4, "docs/kafka.md: only %d complete examples "
          "found" % len(examples))
    bad = []
    for ex in examples:
        ex_val = None if ex["value"] == "null" else h.loads(ex["value"])
        ex_hdr = [p.split("=", 1) for p in ex["headers"].split()]
        diffs = []
        for key, hdrs, payload in real:
            if key != (None if ex["key"] == "null" else ex["key"]) or (
                    (ex_val is None) != (payload is None)):
                continue
            names = [k for k, _ in ex_hdr]
            if [k for k, _ in hdrs] != names or not all(
                    re.match(r"^\d+$", v) for _, v in hdrs + ex_hdr):
                diffs.append((True, "headers %r, example %r" % (hdrs, ex_hdr)))
                continue
            val = None if payload is None else h.loads(payload)
            d = diff(ex_val, val) if ex_val is not None else None
            if d is None:
                diffs = None
                break
            same_op = ex_val is None or ex_val.get("op") == val.get("op")
            diffs.append((not same_op, "%s\n    nearest: %s" % (d, payload)))
        if diffs is not None:
            bad.append("docs/kafka.md:%d: %s" % (
                ex["line"], min(diffs)[1] if diffs
                else "no message with the key %s and a%s value"
                % (ex["key"], " null" if ex_val is None else "")))
    check(not bad, "%d Kafka example(s) differ from what walcast sends:\n"
          % len(bad) + "\n".join(bad))
    h.log("docs/kafka.md: %d examples match" % len(examples))


def kafka_run(c):
    """KAFKA_WORKLOAD through the Kafka sink: [(key, headers, value)] as
    kcat reads them back."""
    c.sql("CREATE DATABASE app")
    c.sql(KAFKA_SETUP, dbname="app")
    mock = h.KafkaMock(c.tmp, brokers=1)
    mock.cmd("topic %s 1" % KAFKA_TOPIC)
    cfg = h.write_config(os.path.join(c.tmp, "kafka.yaml"),
                         c.dsn(dbname="app"), "kafkadocs", None,
                         extra="sinks:\n" + h.kafka_sink_yaml(mock.bootstrap))
    d = h.start_walcastd(cfg, c.tmp, name="kafka")
    for sql in KAFKA_WORKLOAD:
        c.sql(sql, dbname="app")
    end = h.lsn_int(c.current_lsn())
    h.wait_until(lambda: h.lsn_int(c.slot("kafkadocs")["confirmed_flush_lsn"]
                                   or "0/0") >= end,
                 timeout=60, what="the Kafka changes confirmed")
    d.stop()
    r = h.run([h.kcat_path(), "-b", mock.bootstrap, "-C", "-t", KAFKA_TOPIC,
               "-o", "beginning", "-e", "-J", "-q"], timeout=60)
    check(r.returncode == 0, "kcat -C failed: %s" % r.stderr)
    out = []
    for line in r.stdout.splitlines():
        if line.strip():
            m = json.loads(line)
            hd = m.get("headers") or []
            out.append((m.get("key"), list(zip(hd[0::2], hd[1::2])),
                        m.get("payload")))
    return out


# The settings every PostgreSQL walcast supports (10 and later) knows.  A
# server refuses to start on a setting its build does not know, so the
# example file sets nothing else; output_plugin_libraries exists only in
# some builds.
STOCK_SETTINGS = {"wal_level", "max_replication_slots", "max_wal_senders",
                  "max_slot_wal_keep_size"}


def check_postgresql_conf(c):
    """config/postgresql.conf starts any server, and says how to find out
    whether this one needs output_plugin_libraries."""
    path = os.path.join(SRC, "config", "postgresql.conf")
    with open(path) as f:
        text = f.read()
    active = [l.split("=", 1)[0].strip() for l in text.splitlines()
              if l.strip() and not l.lstrip().startswith("#")]
    unknown = [n for n in active if n not in STOCK_SETTINGS]
    check(not unknown, "config/postgresql.conf sets %s, which stock "
          "PostgreSQL does not know: a server without it refuses to start; "
          "comment it out and say how to check" % unknown)
    check("#output_plugin_libraries = " in text
          and "SHOW output_plugin_libraries;" in text
          and "unrecognized configuration parameter" in text,
          "config/postgresql.conf does not show the commented-out "
          "output_plugin_libraries line and how to check for it")
    # the file as an operator includes it: the server starts, the
    # settings hold, and the check it describes answers on this build
    copy = os.path.join(c.datadir, "walcast_example.conf")
    with open(copy, "w") as f:
        f.write(text)
    if h.IS_ROOT:
        h.shutil.chown(copy, "postgres", "postgres")
    with open(os.path.join(c.datadir, "postgresql.conf"), "a") as f:
        f.write("include 'walcast_example.conf'\n")
    c.restart()
    check(c.sql_value("SHOW wal_level") == "logical",
          "wal_level after including config/postgresql.conf")
    r = c.sql("SHOW output_plugin_libraries", check=False)
    h.log("SHOW output_plugin_libraries on this build: %r" % (r,))


def test():
    jsonl_so = os.environ.get("WC_JSONL_SO")
    check(jsonl_so and os.path.isfile(jsonl_so),
          "WC_JSONL_SO (the jsonl plugin) is not set or not built")
    c = h.Cluster()
    c.sql(WORKLOAD[0])
    out = os.path.join(c.tmp, "out.jsonl")
    plog = os.path.join(c.tmp, "plugin.jsonl")
    extra = ("  - plugin:\n      path: %s\n      config:\n"
             "        file: %s\n" % (h.yq(jsonl_so), h.yq(plog)))
    cfg = h.write_config(os.path.join(c.tmp, "w.yaml"), c.dsn(), "docs",
                         out, extra=extra)
    procs = {"docs": h.start_walcastd(cfg, c.tmp, name="docs")}
    # docs/configuration.md, filter: the parent's name matches nothing
    outs = {}
    for slot, pattern in (("parent", "public.events"),
                          ("leaf", "public.events_*")):
        outs[slot] = os.path.join(c.tmp, slot + ".jsonl")
        cfg = h.write_config(os.path.join(c.tmp, slot + ".yaml"), c.dsn(),
                             slot, outs[slot],
                             filt={"tables": {"include": [pattern]}})
        procs[slot] = h.start_walcastd(cfg, c.tmp, name=slot)
    for sql in WORKLOAD[1:]:
        c.sql(sql)
    end = h.lsn_int(c.current_lsn())
    for slot in procs:
        h.wait_until(lambda: h.lsn_int(c.slot(slot)["confirmed_flush_lsn"]
                                       or "0/0") >= end,
                     timeout=60, what="slot %s confirmed" % slot)
    for p in procs.values():
        p.stop()
    real = read_lines(out)
    plugin = read_lines(plog)

    cases = h.Cases()
    cases.run("README.md", check_examples, "README.md",
              examples("README.md"), real)
    cases.run("file-format.md", check_examples, "docs/file-format.md",
              examples("docs/file-format.md"), real)
    cases.run("plugins.md", check_examples, "docs/plugins.md",
              examples("docs/plugins.md", "Lines"), plugin)
    cases.run("float warning", check_float_warning, procs["docs"].stderr())
    cases.run("partition filter", check_partition_filter,
              read_lines(outs["parent"]), read_lines(outs["leaf"]))
    cases.run("kill -9 repeats", check_kill9_repeats, c)
    if os.environ.get("WC_KAFKA_MOCK"):
        cases.run("kafka.md", lambda: check_kafka_examples(kafka_run(c)))
    else:
        h.log("SKIP kafka.md: the Kafka sink is not built (no WC_KAFKA_MOCK)")
    cases.run("postgresql.conf", check_postgresql_conf, c)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
