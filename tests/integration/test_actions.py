# SPDX-License-Identifier: MIT
"""Every action arrives through walcastd's file sink, exactly as wal2json
sent it and as the database holds it; filters deliver exactly their subset.

Three daemons run at once on three slots: A without a filter, B and C with
filters.  A fourth slot, read with SQL (the "oracle"), gives what wal2json
produced for the same WAL; A must match it line for line (keys, key order,
values), B and C must match its filtered subset.  Column values are also
checked against the rows in the database, xids against txid_current(), and
commit times against pg_xact_commit_timestamp().
"""

import fnmatch
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import RawNum, check, fail  # noqa: E402


def qi(name):
    return '"' + name.replace('"', '""') + '"'


def qn(schema, table):
    return qi(schema) + "." + qi(table)


GOV, BERN, ACME, UNI, T6X = ("town6-govikon", "town6-bern", "org-acme",
                             "zürich-ß", "town6x-foo")
WEIRD = 'we"ird'
WEIRDCOL = 'col"q'

DDL = """
CREATE SCHEMA {gov}; CREATE SCHEMA {bern}; CREATE SCHEMA {acme};
CREATE SCHEMA {uni}; CREATE SCHEMA {t6x};
CREATE TABLE {gov}.t (id bigint PRIMARY KEY, i int, s smallint, n numeric,
  f float8, r real, b bool, tx text, vc varchar(20), by bytea, j jsonb,
  js json, a int[], ta text[], ts timestamptz, tsn timestamp, d date,
  u uuid, iv interval);
CREATE TABLE {gov}.t2 (id int PRIMARY KEY, v text);
CREATE TABLE {gov}.skip_me (id int PRIMARY KEY);
CREATE TABLE {bern}.u (id int PRIMARY KEY, v text, n int);
CREATE TABLE {bern}.bulk (id int PRIMARY KEY, v text);
CREATE TABLE {acme}.f (id int PRIMARY KEY, v text, n numeric);
ALTER TABLE {acme}.f REPLICA IDENTITY FULL;
CREATE TABLE {acme}.tr (id int PRIMARY KEY);
CREATE TABLE {acme}.tr2 (id int PRIMARY KEY);
CREATE TABLE {acme}.nopk (x int, y text);
CREATE TABLE {uni}.{weird} (id int PRIMARY KEY, {wcol} text);
CREATE TABLE {t6x}.t (id int PRIMARY KEY);
""".format(gov=qi(GOV), bern=qi(BERN), acme=qi(ACME), uni=qi(UNI),
           t6x=qi(T6X), weird=qi(WEIRD), wcol=qi(WEIRDCOL))

TX_TEXT = ("tab\there\nnew \"quote\" back\\slash \u00e9 \u20ac \U0001F600 "
           "\x01 ctl \r end")
MSG_TX = 'line1\nline2 "q" \\ \u00e9'
MSG_NONTX = "non-transactional \u20ac"


def lit(s):
    """A SQL string literal (E'' form so control characters survive)."""
    out = []
    for ch in s:
        if ch == "'":
            out.append("''")
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 32:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    return "E'" + "".join(out) + "'"


def workload(c):
    """Runs the transactions; returns {name: xid} (txid_current())."""
    xids = {}

    def txn(name, body):
        v = c.sql_value("BEGIN;\n%s\nSELECT txid_current()::text;\nCOMMIT;"
                        % body)
        xids[name] = int(v)

    gov, bern, acme = qi(GOV), qi(BERN), qi(ACME)
    txn("types", """
INSERT INTO {gov}.t VALUES (1, -2147483648, 32767,
  12345678901234567890.123456789000, 1.5e300, 3.25, true, {tx}, 'h\u00e9',
  '\\x00ff10'::bytea, '{{"k": "v\\n", "n": [1, 2.5, null], "u": "\u00e9"}}',
  '{{"raw" :  1}}', '{{1,NULL,3}}', ARRAY['a b', 'c"d', NULL],
  '2024-02-29 23:59:59.123456+02', '2024-02-29 23:59:59', '2024-02-29',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day 02:03:04');
INSERT INTO {gov}.t (id) VALUES (2);
INSERT INTO {gov}.t (id, n, f, r, tx, by, j, a, ts) VALUES
  (3, 'NaN', '-Infinity', 'NaN', '', ''::bytea, 'null', '{{}}',
   '1999-12-31 23:00:00+00');
INSERT INTO {gov}.t2 VALUES (1, 'one');
INSERT INTO {gov}.skip_me VALUES (1);
INSERT INTO {t6x}.t VALUES (1);
""".format(gov=gov, tx=lit(TX_TEXT), t6x=qi(T6X)))
    txn("weird", """
INSERT INTO {uni}.{w} VALUES (1, 'x');
DO $do$ BEGIN PERFORM pg_logical_emit_message(true, 'walcast', {m}); END $do$;
""".format(uni=qi(UNI), w=qi(WEIRD), m=lit(MSG_TX)))
    c.sql("DO $do$ BEGIN PERFORM pg_logical_emit_message(false, 'walcast', "
          "%s); END $do$;" % lit(MSG_NONTX))
    txn("fill", """
INSERT INTO {bern}.u VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 30);
INSERT INTO {acme}.f VALUES (1, 'f1', 1.10), (2, 'f2', NULL);
INSERT INTO {acme}.tr SELECT generate_series(1, 3);
INSERT INTO {acme}.tr2 VALUES (1);
INSERT INTO {acme}.nopk VALUES (1, 'no key');
INSERT INTO {bern}.bulk SELECT g, 'row ' || g FROM generate_series(1, 1000) g;
""".format(bern=bern, acme=acme))
    snap_f = fetch_rows(c, ACME, "f")
    txn("upd", "UPDATE {bern}.u SET v = 'changed', n = n + 1 WHERE id = 2;"
        .format(bern=bern))
    txn("upd_pk", "UPDATE {bern}.u SET id = 100 WHERE id = 1;"
        .format(bern=bern))
    txn("full_upd", "UPDATE {acme}.f SET v = 'new', n = 2.5 WHERE id = 1;"
        .format(acme=acme))
    txn("dels", "DELETE FROM {acme}.f WHERE id = 2; "
        "DELETE FROM {bern}.u WHERE id = 3;".format(acme=acme, bern=bern))
    txn("bulk", "DELETE FROM {bern}.bulk WHERE id <= 800;".format(bern=bern))
    txn("trunc", "TRUNCATE {acme}.tr, {acme}.tr2;".format(acme=acme))
    txn("weird_upd", "UPDATE {uni}.{w} SET {col} = 'y';".format(
        uni=qi(UNI), w=qi(WEIRD), col=qi(WEIRDCOL)))
    txn("t2", "INSERT INTO {gov}.t2 VALUES (2, 'two'); "
        "DELETE FROM {gov}.t2 WHERE id = 1;".format(gov=gov))
    return xids, snap_f


# ---------------------------------------------------------------------------
# what the database holds, as wal2json would print it

def table_columns(c, schema, table):
    return c.sql_rows(
        "SELECT attname, atttypid::text, format_type(atttypid, atttypmod), "
        "format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = "
        "%s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        % lit(qn(schema, table)), 4)


def fetch_rows(c, schema, table):
    """{first column text: [(name, typeoid, types, text or None), ...]}"""
    cols = table_columns(c, schema, table)
    rows = c.sql_rows("SELECT %s FROM %s ORDER BY 1" % (
        ", ".join(qi(n) + "::text" for n, _, _, _ in cols),
        qn(schema, table)), len(cols))
    return {r[0]: [(n, int(oid), (t1, t2), v)
                   for (n, oid, t1, t2), v in zip(cols, r)] for r in rows}


NUMERIC_OIDS = {20, 21, 23, 26, 700, 701, 1700}


def expect_value(oid, text):
    if text is None:
        return None
    if oid == 16:
        return {"t": True, "true": True, "f": False, "false": False}[text]
    if oid in NUMERIC_OIDS:
        if text in ("NaN", "Infinity", "-Infinity"):
            # wal2json 2.5 prints these as null, pgoutput keeps them
            return text if h.DECODER == "pgoutput" else None
        return RawNum(text)
    if oid == 17:
        check(text.startswith("\\x"), "bytea text %r" % text)
        return text[2:]
    return text


def compare_columns(got, dbrow, what):
    probs = []
    if not isinstance(got, list):
        return ["%s: not a list: %r" % (what, got)]
    if [g.get("name") for g in got] != [d[0] for d in dbrow]:
        return ["%s: column names %r, database has %r"
                % (what, [g.get("name") for g in got], [d[0] for d in dbrow])]
    for g, (name, oid, types, text) in zip(got, dbrow):
        if list(g.keys()) != ["name", "type", "typeoid", "value"]:
            probs.append("%s.%s: keys %r" % (what, name, list(g.keys())))
        if g.get("typeoid") != RawNum(str(oid)):
            probs.append("%s.%s: typeoid %r, expected %d"
                         % (what, name, g.get("typeoid"), oid))
        if g.get("type") not in types:
            probs.append("%s.%s: type %r, expected %r"
                         % (what, name, g.get("type"), types[0]))
        want = expect_value(oid, text)
        v = g.get("value")
        if oid == 1184 and want is not None and isinstance(v, str):
            ok = h.ts_micros(v) == h.ts_micros(want)
        else:
            ok = v == want and type(v) == type(want)
        if not ok:
            probs.append("%s.%s: value %r, database holds %r (expected %r)"
                         % (what, name, v, text, want))
    return probs


# ---------------------------------------------------------------------------
# filters, as specified

def is_glob(p):
    return any(ch in p for ch in "*?[")


def schema_match(pat, schema):
    if fnmatch.fnmatchcase(schema, pat):
        return True
    if not is_glob(pat) and "-" in schema:
        return schema.split("-", 1)[0] == pat
    return False


def table_match(pat, schema, table):
    if "." in pat:
        return fnmatch.fnmatchcase(schema + "." + table, pat)
    return fnmatch.fnmatchcase(table, pat)


def passes(filt, e):
    if e["op"] not in filt.get("ops", ["insert", "update", "delete",
                                       "truncate", "message"]):
        return False
    if e["op"] == "message":
        return True
    s, t = e["schema"], e["table"]
    sch = filt.get("schemas", {})
    if sch.get("include") and not any(schema_match(p, s)
                                       for p in sch["include"]):
        return False
    if any(schema_match(p, s) for p in sch.get("exclude", [])):
        return False
    tab = filt.get("tables", {})
    if tab.get("include") and not any(table_match(p, s, t)
                                      for p in tab["include"]):
        return False
    if any(table_match(p, s, t) for p in tab.get("exclude", [])):
        return False
    return True


FILTER_B = {
    "schemas": {"include": ["town6", "zürich-*"], "exclude": ["*-bern"]},
    "tables": {"exclude": ["skip_*", "town6-govikon.t2"]},
    "ops": ["insert", "delete", "truncate"],
}
FILTER_C = {
    "tables": {"include": ["org-acme.f", WEIRD, "bul?"]},
    "ops": ["update", "delete"],
}


def sink_filter_yaml(filt):
    """The lines of a sink's own filter, under "  - file:"."""
    lines = []
    for key in ("schemas", "tables"):
        if key in filt:
            lines.append("      %s: {%s}" % (key, ", ".join(
                "%s: [%s]" % (k2, ", ".join(h.yq(p) for p in pats))
                for k2, pats in sorted(filt[key].items()))))
    if "ops" in filt:
        lines.append("      ops: [%s]" % ", ".join(filt["ops"]))
    return lines


# ---------------------------------------------------------------------------

def test():
    c = h.Cluster({"timezone": "Asia/Kolkata",
                   "track_commit_timestamp": "on"})
    c.sql(DDL)
    tmp = c.tmp
    outs, daemons = {}, {}
    for name, filt in (("a", None), ("b", FILTER_B), ("c", FILTER_C)):
        outs[name] = os.path.join(tmp, "out_%s.jsonl" % name)
        cfg = h.write_config(os.path.join(tmp, "%s.yaml" % name), c.dsn(),
                             "actions_%s" % name, outs[name], filt=filt)
        daemons[name] = h.start_walcastd(cfg, tmp, name="walcastd-" + name)
    # D: no global filter, but two file sinks with B's and C's filters as
    # their own: each must get exactly what B and C get
    sinks = ["sinks:"]
    for name, filt in (("db", FILTER_B), ("dc", FILTER_C)):
        outs[name] = os.path.join(tmp, "out_%s.jsonl" % name)
        sinks += ["  - file:", "      path: " + h.yq(outs[name])]
        sinks += sink_filter_yaml(filt)
    cfg = h.write_config(os.path.join(tmp, "d.yaml"), c.dsn(), "actions_d",
                         extra="\n".join(sinks) + "\n")
    daemons["d"] = h.start_walcastd(cfg, tmp, name="walcastd-d")
    err = daemons["a"].stderr()
    check(any("streaming" in l and "actions_a" in l for l in err.splitlines()),
          "no stderr line names both 'streaming' and the slot:\n" + err)
    h.oracle_create(c, "oracle")

    xids, snap_f = workload(c)
    want = h.oracle_read(c, "oracle")
    h.log("oracle: %d changes" % len(want))
    check(len(want) > 1800, "oracle saw only %d changes" % len(want))
    wants = {"a": want,
             "b": [e for e in want if passes(FILTER_B, e)],
             "c": [e for e in want if passes(FILTER_C, e)]}
    wants["db"], wants["dc"] = wants["b"], wants["c"]
    names = ("a", "b", "c", "db", "dc")
    for name in names:
        n = len(wants[name])
        counter = h.LineCounter(outs[name])
        try:
            h.wait_until(lambda: counter() >= n, timeout=60,
                         what="%d lines from walcastd-%s" % (n, name))
        except h.TestFailure as e:
            h.log(str(e), "(comparing what arrived)")
    for name in "abcd":
        daemons[name].stop()
        for line in daemons[name].stderr().splitlines():
            check(not line.startswith("<3>"),
                  "walcastd-%s logged an error: %s" % (name, line))

    got = {n: h.read_jsonl(outs[n]) for n in names}
    probs = []
    for n in names:
        h.log("walcastd-%s: %d lines, expected %d" % (n, len(got[n]),
                                                        len(wants[n])))
        probs += h.diff_changes(got[n], wants[n], "walcastd-" + n)
    try:
        probs += check_against_db(c, got["a"], xids, snap_f)
    except Exception:
        import traceback
        probs.append("checking walcastd-a's lines against the database "
                     "failed (malformed output?):\n" + traceback.format_exc())
    if probs:
        fail("%d problems:\n  " % len(probs) + "\n  ".join(probs[:80]))


def check_against_db(c, lines, xids, snap_f):
    probs = []

    def sel(op, schema, table):
        return [e for e in lines if e.get("op") == op and
                e.get("schema") == schema and e.get("table") == table]

    # every change: xid = txid_current() of its transaction, commit_time =
    # pg_xact_commit_timestamp(xid), lsn <= commit_lsn < end_lsn
    known = set(xids.values())
    for i, e in enumerate(lines):
        if e.get("op") == "message" and not e.get("transactional"):
            for k in ("xid", "commit_lsn", "end_lsn", "commit_time"):
                if k in e:
                    probs.append("line %d: non-transactional message has %s"
                                 % (i + 1, k))
            continue
        try:
            xid = int(e["xid"])
        except (KeyError, ValueError, TypeError):
            probs.append("line %d: bad xid %r" % (i + 1, e.get("xid")))
            continue
        if xid not in known:
            probs.append("line %d: xid %d is none of the workload's %s"
                         % (i + 1, xid, sorted(known)))
        try:
            if not (h.lsn_int(e["lsn"]) <= h.lsn_int(e["commit_lsn"]) <
                    h.lsn_int(e["end_lsn"])):
                probs.append("line %d: not lsn <= commit_lsn < end_lsn: %r"
                             % (i + 1, e))
        except (KeyError, ValueError, AttributeError):
            probs.append("line %d: bad LSNs in %r" % (i + 1, e))
    for name, xid in xids.items():
        ts = c.sql_value("SELECT pg_xact_commit_timestamp('%d'::xid)::text"
                         % xid)
        mine = [e for e in lines if e.get("xid") == RawNum(str(xid))]
        if not mine:
            probs.append("txn %s (xid %d): no line carries its xid"
                         % (name, xid))
        for e in mine[:1]:
            ct = e.get("commit_time")
            if isinstance(ct, str) and h.COMMIT_TIME_RE.match(ct) and \
                    h.ts_micros(ct) != h.ts_micros(ts):
                probs.append("txn %s: commit_time %s, database says %s"
                             % (name, ct, ts))

    # inserts into the typed table, column by column
    rows = fetch_rows(c, GOV, "t")
    ins = sel("insert", GOV, "t")
    if len(ins) != 3:
        probs.append("%d inserts into %s.t, expected 3" % (len(ins), GOV))
    for e in ins:
        key = e["columns"][0]["value"] if e.get("columns") else None
        if str(key) not in rows:
            probs.append("insert with unknown id %r" % key)
            continue
        probs += compare_columns(e["columns"], rows[str(key)],
                                 "insert %s.t id=%s" % (GOV, key))
        if e.get("pk") != [{"name": "id", "type": "bigint",
                            "typeoid": RawNum("20")}]:
            probs.append("insert %s.t: pk %r" % (GOV, e.get("pk")))
        if e.get("xid") != RawNum(str(xids["types"])):
            probs.append("insert %s.t: xid %r, txid_current() said %d"
                         % (GOV, e.get("xid"), xids["types"]))

    # updates: plain, PK change
    u = fetch_rows(c, BERN, "u")
    upd = sel("update", BERN, "u")
    if len(upd) != 2:
        probs.append("%d updates of %s.u, expected 2" % (len(upd), BERN))
    else:
        probs += compare_columns(upd[0]["columns"], u["2"], "update u id=2")
        # wal2json sends the key as identity here too
        if upd[0].get("identity", []) not in ([], [
                {"name": "id", "type": "integer", "typeoid": RawNum("23"),
                 "value": RawNum("2")}]):
            probs.append("update u id=2: identity %r" % upd[0]["identity"])
        probs += compare_columns(upd[1]["columns"], u["100"],
                                 "update u id 1->100")
        ident = [{"name": "id", "type": "integer", "typeoid": RawNum("23"),
                  "value": RawNum("1")}]
        if upd[1].get("identity") != ident:
            probs.append("PK update: identity %r, expected the old key %r"
                         % (upd[1].get("identity"), ident))
    dl = sel("delete", BERN, "u")
    if len(dl) != 1 or dl[0].get("identity") != [
            {"name": "id", "type": "integer", "typeoid": RawNum("23"),
             "value": RawNum("3")}]:
        probs.append("delete from u: %r" % dl)
    elif "columns" in dl[0]:
        probs.append("delete carries columns")

    # REPLICA IDENTITY FULL
    f = fetch_rows(c, ACME, "f")
    fu, fd = sel("update", ACME, "f"), sel("delete", ACME, "f")
    if len(fu) != 1 or len(fd) != 1:
        probs.append("FULL: %d updates, %d deletes, expected 1 and 1"
                     % (len(fu), len(fd)))
    else:
        probs += compare_columns(fu[0].get("columns"), f["1"],
                                 "FULL update columns")
        probs += compare_columns(fu[0].get("identity"), snap_f["1"],
                                 "FULL update identity (old row)")
        probs += compare_columns(fd[0].get("identity"), snap_f["2"],
                                 "FULL delete identity (old row)")

    # bulk delete: one delete per row, keys = exactly the deleted rows
    left = {int(k) for k in fetch_rows(c, BERN, "bulk")}
    deleted = set(range(1, 1001)) - left
    bd = sel("delete", BERN, "bulk")
    ids = []
    for e in bd:
        try:
            (col,) = e["identity"]
            ids.append(int(col["value"]))
        except (KeyError, ValueError, TypeError):
            probs.append("bulk delete line %r" % e)
    if sorted(ids) != sorted(deleted) or len(ids) != 800:
        probs.append("bulk delete: %d lines, ids %s... expected the %d "
                     "deleted rows" % (len(ids), sorted(ids)[:5],
                                       len(deleted)))
    if len({e.get("xid") for e in bd}) != 1:
        probs.append("bulk delete spread over several xids")

    # truncate of two tables in one statement
    tr = [e for e in lines if e.get("op") == "truncate"]
    if sorted(e.get("table") for e in tr) != ["tr", "tr2"] or any(
            e.get("xid") != RawNum(str(xids["trunc"])) for e in tr):
        probs.append("truncate lines: %r" % tr)
    if c.sql_value("SELECT count(*)::text FROM %s.tr" % qi(ACME)) != "0":
        probs.append("tr not empty?")

    # messages
    msgs = [e for e in lines if e.get("op") == "message"]
    want_msgs = [(True, MSG_TX), (False, MSG_NONTX)]
    got_msgs = [(e.get("transactional"), e.get("content")) for e in msgs]
    if got_msgs != want_msgs or any(e.get("prefix") != "walcast"
                                    for e in msgs):
        probs.append("messages %r, expected %r" % (msgs, want_msgs))
    elif msgs[0].get("xid") != RawNum(str(xids["weird"])):
        probs.append("transactional message xid %r, expected %d"
                     % (msgs[0].get("xid"), xids["weird"]))

    # unicode schema, table and column names with double quotes
    w = fetch_rows(c, UNI, WEIRD)
    wi, wu = sel("insert", UNI, WEIRD), sel("update", UNI, WEIRD)
    if len(wi) != 1 or len(wu) != 1:
        probs.append("weird table: %d inserts, %d updates" % (len(wi),
                                                             len(wu)))
    else:
        probs += compare_columns(wu[0].get("columns"), w["1"],
                                 "update of %s.%s" % (UNI, WEIRD))

    # table without a primary key: insert with an empty pk
    npk = sel("insert", ACME, "nopk")
    if len(npk) != 1 or npk[0].get("pk") != []:
        probs.append("nopk insert: %r" % npk)
    return probs


if __name__ == "__main__":
    h.main(test)
