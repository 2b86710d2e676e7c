# SPDX-License-Identifier: MIT
"""Other tenants' types: enums, domains, composites and arrays of them in
schemas whose names need quoting, with type names that need quoting too.

wal2json writes such a type name unescaped ("type":"other-tenant".st is
not JSON); walcast delivers every change with the type name exactly as
format_type() prints it with an empty search_path.  With the schemas
included every change arrives with the exact names; with some of them
excluded by patterns walcast matches itself (not pushed down to wal2json)
the other tenants' changes still arrive and walcastd does not stop.  And
a change that does not decode at all (text that is not UTF-8 in a
SQL_ASCII database) is skipped when the filter drops its table, and stops
walcastd when the filter passes it.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

# schema -> (SQL to create its types, a table's column definitions)
SCHEMAS = {
    "other-tenant": (
        'CREATE TYPE "other-tenant".st AS ENUM (\'a\', \'b\');'
        'CREATE TYPE "other-tenant"."we""ird" AS ENUM (\'x\');'
        'CREATE DOMAIN "other-tenant".dom AS text CHECK (VALUE <> \'\');'
        'CREATE TYPE "other-tenant".comp AS (x int, s "other-tenant".st);',
        's "other-tenant".st, sa "other-tenant".st[], '
        'w "other-tenant"."we""ird", d "other-tenant".dom, '
        'c "other-tenant".comp, ca "other-tenant".comp[]'),
    'a"b': (
        'CREATE TYPE "a""b"."a""b" AS ENUM (\'z\');'
        'CREATE DOMAIN "a""b".d2 AS "other-tenant".st;',
        'ab "a""b"."a""b", aba "a""b"."a""b"[], d2 "a""b".d2'),
    "sp ace": (
        'CREATE TYPE "sp ace"."an enum" AS ENUM (\'one\', \'two words\');'
        'CREATE DOMAIN "sp ace"."my dom" AS int CHECK (VALUE > 0);'
        'CREATE TYPE "sp ace"."com p" AS (a "sp ace"."an enum", b text);',
        'e "sp ace"."an enum", ea "sp ace"."an enum"[], '
        'dm "sp ace"."my dom", cp "sp ace"."com p", '
        'cpa "sp ace"."com p"[]'),
    "dot.ted": (
        'CREATE TYPE "dot.ted"."co.mp" AS (x int, y text);'
        'CREATE TYPE "dot.ted".plain AS ENUM (\'k\');',
        'c "dot.ted"."co.mp", ca "dot.ted"."co.mp"[], p "dot.ted".plain'),
    "ünï": (
        'CREATE TYPE "ünï"."ëñ" AS ENUM (\'q\');'
        'CREATE DOMAIN "ünï"."dö.m" AS numeric(6,2);',
        'u "ünï"."ëñ", ua "ünï"."ëñ"[], dm "ünï"."dö.m"'),
}

# one row per table: column -> SQL literal
ROWS = {
    "other-tenant": {"s": "'a'", "sa": "'{a,b}'", "w": "'x'", "d": "'hi'",
                     "c": "'(1,b)'", "ca": "ARRAY['(2,a)']::\"other-tenant\".comp[]"},
    'a"b': {"ab": "'z'", "aba": "'{z,z}'", "d2": "'b'"},
    "sp ace": {"e": "'two words'", "ea": "'{one,\"two words\"}'", "dm": "5",
               "cp": "'(one,\"x y\")'",
               "cpa": "ARRAY['(one,z)']::\"sp ace\".\"com p\"[]"},
    "dot.ted": {"c": "'(1,\"x y\")'", "ca": "ARRAY['(2,z)']::\"dot.ted\".\"co.mp\"[]",
                "p": "'k'"},
    "ünï": {"u": "'q'", "ua": "'{q}'", "dm": "12.5"},
}


def qi(name):
    return '"%s"' % name.replace('"', '""')


def setup(c):
    sql = ["CREATE TABLE public.plain (id int PRIMARY KEY, v text);"]
    for schema, (types, cols) in SCHEMAS.items():
        sql.append("CREATE SCHEMA %s;" % qi(schema))
    for schema, (types, cols) in SCHEMAS.items():
        sql.append(types)
    for schema, (types, cols) in SCHEMAS.items():
        # REPLICA IDENTITY FULL: the old rows carry the types too
        sql.append("CREATE TABLE %s.t (id int PRIMARY KEY, %s);"
                   "ALTER TABLE %s.t REPLICA IDENTITY FULL;"
                   % (qi(schema), cols, qi(schema)))
        # a key of the tenant's own type
        first = cols.split(",")[0].strip()
        sql.append("CREATE TABLE %s.k (%s PRIMARY KEY, n int);"
                   % (qi(schema), first))
    c.sql("\n".join(sql))


def expected_types(c):
    """(schema, table) -> {column: format_type text}, as PostgreSQL prints
    them with an empty search_path."""
    rows = c.sql_rows(
        "SET search_path = ''; SELECT n.nspname, r.relname, a.attname, "
        "format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "JOIN pg_class r ON r.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = r.relnamespace "
        "WHERE r.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%'", 4)
    out = {}
    for s, t, a, ty in rows:
        out.setdefault((s, t), {})[a] = ty
    return out


def workload(c):
    """Inserts, updates and deletes in every table; returns the expected
    changes as (op, schema, table)."""
    sql, want = [], []
    for schema in SCHEMAS:
        row = ROWS[schema]
        cols = ", ".join(row)
        sql.append("INSERT INTO %s.t (id, %s) VALUES (1, %s);"
                   % (qi(schema), cols, ", ".join(row.values())))
        first = list(row)[0]
        sql.append("INSERT INTO %s.k VALUES (%s, 1);"
                   % (qi(schema), row[first]))
        sql.append("UPDATE %s.t SET id = 2;" % qi(schema))
        sql.append("UPDATE %s.k SET n = 2;" % qi(schema))
        sql.append("DELETE FROM %s.t;" % qi(schema))
        sql.append("DELETE FROM %s.k;" % qi(schema))
        sql.append("INSERT INTO public.plain VALUES (%d, %s);"
                   % (len(want) // 6 + 1, "'after %s'" % schema.replace("'", "''")))
        want += [("insert", schema, "t"), ("insert", schema, "k"),
                 ("update", schema, "t"), ("update", schema, "k"),
                 ("delete", schema, "t"), ("delete", schema, "k")]
        want.append(("insert", "public", "plain"))
    # the end: the last change of the workload
    sql.append("INSERT INTO public.plain VALUES (1000, 'end');")
    want.append(("insert", "public", "plain"))
    c.sql("\n".join(sql))
    return want


def run(c, name, filt, want, types):
    out = os.path.join(c.tmp, name + ".jsonl")
    cfg = h.write_config(os.path.join(c.tmp, name + ".yaml"), c.dsn(), name,
                         out, filt=filt)
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-" + name)
    cnt = h.LineCounter(out)
    h.wait_until(lambda: cnt() >= len(want) or d.poll() is not None,
                 timeout=60, what="%d lines" % len(want))
    check(d.poll() is None, "%s: walcastd stopped\n%s" % (name, d.describe()))
    d.stop()
    got = h.read_jsonl(out)
    check([(e["op"], e["schema"], e["table"]) for e in got] == want,
          "%s: changes\n got %r\nwant %r"
          % (name, [(e["op"], e["schema"], e["table"]) for e in got], want))
    n = 0
    for e in got:
        tys = types[(e["schema"], e["table"])]
        for key in ("columns", "identity", "pk"):
            for col in e.get(key, []):
                check(col["type"] == tys[col["name"]],
                      "%s: %s.%s %s %s: type %r, format_type() says %r"
                      % (name, e["schema"], e["table"], key, col["name"],
                         col["type"], tys[col["name"]]))
                n += 1
    return got, n


def check_values(got):
    """The values of the inserted rows are PostgreSQL's text of them."""
    for e in got:
        if e["op"] != "insert" or e["table"] != "t":
            continue
        vals = {col["name"]: col["value"] for col in e["columns"]}
        if e["schema"] == "sp ace":
            check(vals["e"] == "two words" and
                  vals["ea"] == '{one,"two words"}' and vals["dm"] == "5" and
                  vals["cp"] == '(one,"x y")' and
                  vals["cpa"] == '{"(one,z)"}', "sp ace values %r" % vals)
        if e["schema"] == "ünï":
            check(vals["u"] == "q" and vals["ua"] == "{q}" and
                  str(vals["dm"]) == "12.50", "ünï values %r" % vals)
        if e["schema"] == "other-tenant":
            check(vals["s"] == "a" and vals["sa"] == "{a,b}" and
                  vals["w"] == "x" and vals["c"] == "(1,b)" and
                  vals["ca"] == '{"(2,a)"}', "other-tenant values %r" % vals)


def test_undecodable(c):
    """A change that does not decode at all: skipped when its table is
    filtered out, a stop when it is not."""
    db = "ascii_db"
    c.sql("CREATE DATABASE %s ENCODING 'SQL_ASCII' LC_COLLATE 'C' "
          "LC_CTYPE 'C' TEMPLATE template0" % db)
    c.sql('CREATE SCHEMA "other-tenant"; CREATE SCHEMA mine;'
          'CREATE TABLE "other-tenant".t (id int PRIMARY KEY, v text);'
          'CREATE TABLE mine.t (id int PRIMARY KEY, v text);', dbname=db)
    out = os.path.join(c.tmp, "ascii.jsonl")
    # a glob: matched by walcast, not pushed down to wal2json
    cfg = h.write_config(os.path.join(c.tmp, "ascii.yaml"), c.dsn(dbname=db),
                         "ascii", out,
                         filt={"schemas": {"exclude": ["other-*"]}})
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-ascii")
    c.sql("INSERT INTO mine.t VALUES (1, 'a');"
          "INSERT INTO \"other-tenant\".t VALUES (1, E'not UTF-8: \\xff');"
          "INSERT INTO mine.t VALUES (2, 'b');", dbname=db)
    cnt = h.LineCounter(out)
    h.wait_until(lambda: cnt() >= 2 or d.poll() is not None, timeout=30,
                 what="2 lines")
    check(d.poll() is None, "an excluded table's undecodable change stopped "
          "walcastd\n" + d.describe())
    d.stop()
    ids = [int(e["columns"][0]["value"]) for e in h.read_jsonl(out)]
    check(ids == [1, 2], "excluded: rows %r, expected [1, 2]" % ids)
    # included, the same kind of change stops walcastd before it
    c.sql("INSERT INTO mine.t VALUES (3, E'not UTF-8: \\xff');"
          "INSERT INTO mine.t VALUES (4, 'c');", dbname=db)
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-ascii-2", ready=False)
    rc = d.wait(timeout=30)
    check(rc == 1 and "invalid UTF-8" in d.stderr(),
          "an included table's undecodable change: exit %s\n%s"
          % (rc, d.describe()))
    ids = [int(e["columns"][0]["value"]) for e in h.read_jsonl(out)]
    check(ids == [1, 2], "included: rows %r, expected [1, 2]" % ids)
    h.log("undecodable: skipped when excluded, a stop when included")


def test():
    c = h.Cluster()
    setup(c)
    types = expected_types(c)
    for name in ("all", "excl"):
        h.create_slot_sql(c, name)
    want = workload(c)

    got, n = run(c, "all", None, want, types)
    check_values(got)
    h.log("included: %d changes, %d column types exact" % (len(got), n))

    # patterns walcast matches itself (globs, names wal2json's lists
    # cannot take): the excluded tenants' changes reach walcast
    excluded = ("other-tenant", "sp ace", 'a"b')
    filt = {"schemas": {"exclude": ["other-*", "sp ace", 'a"b']}}
    want_ex = [w for w in want if w[1] not in excluded]
    got, n = run(c, "excl", filt, want_ex, types)
    check(any(e["schema"] == "dot.ted" for e in got) and
          any(e["schema"] == "public" for e in got), "other tenants missing")
    h.log("excluded %s: %d changes of the others, %d column types exact"
          % (", ".join(excluded), len(got), n))

    test_undecodable(c)


if __name__ == "__main__":
    h.main(test)
