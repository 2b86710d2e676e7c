# SPDX-License-Identifier: MIT
"""The same WAL through both decoders: walcastd with wal2json and walcastd
with pgoutput, each with a file sink, must write the same lines but for
the documented differences (docs/configuration.md, "Choosing a decoder";
docs/file-format.md): NaN, Infinity and -Infinity in number columns,
which wal2json 2.5 sends as null and pgoutput keeps, and an update's
`missing`, the unchanged TOASTed columns pgoutput says it left out
(wal2json leaves them out without saying so).

The workload has every action, the column types the decoders' unit tests
cover (enums and domains of tenant schemas, arrays, json, bytea, numerics
with modifiers, timestamps), schemas like town6-govikon and quoted
identifiers, unchanged TOASTed values under the default identity and
under FULL, REPLICA IDENTITY FULL and USING INDEX, a key that changes, a
truncate of several tables, logical messages (transactional, not, and
bytes that are not UTF-8), and DDL in the middle of the stream (a column
added, a type's column changed, a table created).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

BIG = "".join("%08x" % ((i * 2654435761) & 0xffffffff) for i in range(1500))

SETUP = r'''
CREATE SCHEMA "town6-govikon"; CREATE SCHEMA "we""ird";
CREATE TYPE "town6-govikon".status AS ENUM ('open', 'closed');
CREATE DOMAIN public.positive AS integer CHECK (VALUE > 0);
CREATE TABLE "town6-govikon".tickets (
  id bigint PRIMARY KEY, title character varying(20), price numeric(10,2),
  st "town6-govikon".status, sts "town6-govikon".status[],
  at timestamp with time zone, at3 timestamp(3) without time zone,
  ok boolean, b bytea, r real, d double precision, n numeric,
  i smallint, o oid, tags text[], nums numeric(5,2)[], doc jsonb, js json,
  big text, p positive, c character(3), u uuid, iv interval, tm time,
  bits bit(4), vb bit varying);
ALTER TABLE "town6-govikon".tickets ALTER big SET STORAGE EXTERNAL;
CREATE TABLE "we""ird"."Ta ble" ("Id" integer PRIMARY KEY, "v""q" text);
CREATE TABLE public.full_t (a integer, t text, c integer);
ALTER TABLE public.full_t REPLICA IDENTITY FULL;
ALTER TABLE public.full_t ALTER t SET STORAGE EXTERNAL;
CREATE TABLE public.idx_t (a integer PRIMARY KEY, b integer NOT NULL,
  v text);
CREATE UNIQUE INDEX idx_t_b ON public.idx_t (b);
ALTER TABLE public.idx_t REPLICA IDENTITY USING INDEX idx_t_b;
CREATE TABLE public.tr1 (id int PRIMARY KEY);
CREATE TABLE public.tr2 (id int PRIMARY KEY);
'''

WORKLOAD = [
    r'''INSERT INTO "town6-govikon".tickets VALUES
  (1, 'first', 12.50, 'open', '{open,closed}', '2026-11-25 13:48:23.57043+00',
   '2026-11-25 13:48:23.123', true, '\xdead', 'NaN', '-Infinity', 'Infinity',
   -3, 16384, '{a,"b c",NULL}', '{1.5,NULL}', '{"k": [1, "x\ny"]}',
   '{"raw" :  1}', '%s', 5, 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
   '1 year 2 mons 3 days 04:05:06.5', '12:34:56', B'1010', B'101');
INSERT INTO "town6-govikon".tickets (id, title) VALUES
  (2, E'tab\there "q" \\ \u00e9 \u20ac');''' % BIG,
    r'''UPDATE "town6-govikon".tickets SET title = 'second' WHERE id = 1;''',
    r'''UPDATE "town6-govikon".tickets SET id = 3 WHERE id = 2;''',
    r'''DELETE FROM "town6-govikon".tickets WHERE id = 3;''',
    r'''INSERT INTO "we""ird"."Ta ble" VALUES (1, 'q');
UPDATE "we""ird"."Ta ble" SET "v""q" = 'r';''',
    r'''INSERT INTO public.full_t VALUES (1, '%s', 7), (2, 'small', 8);''' % BIG,
    r'''UPDATE public.full_t SET c = c + 1;''',
    r'''DELETE FROM public.full_t WHERE a = 2;''',
    r'''INSERT INTO public.idx_t VALUES (1, 10, 'v'), (2, 20, 'w');
UPDATE public.idx_t SET v = 'x' WHERE a = 1;
UPDATE public.idx_t SET b = 11 WHERE a = 1;
DELETE FROM public.idx_t WHERE a = 2;''',
    r'''INSERT INTO public.tr1 VALUES (1); INSERT INTO public.tr2 VALUES (1);''',
    r'''TRUNCATE public.tr1, public.tr2;''',
    r'''BEGIN;
SELECT pg_logical_emit_message(true, 'walcast', E'line1\nline2 "q"');
INSERT INTO public.tr1 VALUES (2);
COMMIT;''',
    r'''SELECT pg_logical_emit_message(false, 'walcast', 'outside');''',
    r'''SELECT pg_logical_emit_message(true, 'bytes', '\xff01c3'::bytea);''',
    # DDL in the middle of the stream
    r'''ALTER TABLE "we""ird"."Ta ble" ADD COLUMN extra numeric(6,1);
INSERT INTO "we""ird"."Ta ble" VALUES (2, 's', 1.5);''',
    r'''ALTER TABLE public.tr2 ALTER id TYPE bigint;
INSERT INTO public.tr2 VALUES (5);''',
    r'''CREATE TABLE "town6-govikon".later (id int PRIMARY KEY,
  st "town6-govikon".status);
INSERT INTO "town6-govikon".later VALUES (1, 'closed');''',
    r'''BEGIN;
INSERT INTO public.tr1 SELECT generate_series(10, 500);
DELETE FROM public.tr1 WHERE id >= 10;
COMMIT;''',
]

NUMBERS = {"20", "21", "23", "26", "700", "701", "1700"}


def as_wal2json(e):
    """The documented differences undone: pgoutput's exact NaN and
    Infinity in number columns are null with wal2json 2.5, and wal2json
    has no `missing`."""
    out = dict(e)
    out.pop("missing", None)
    for k in ("columns", "identity"):
        if isinstance(e.get(k), list):
            out[k] = [dict(c, value=None)
                      if str(c.get("typeoid")) in NUMBERS and
                      c.get("value") in ("NaN", "Infinity", "-Infinity")
                      else c for c in e[k]]
    return out


def write(c, name, decoder, out):
    path = os.path.join(c.tmp, name + ".yaml")
    h.write_config(path, c.dsn(), name, out)
    with open(path) as f:
        text = f.read()
    text = "\n".join(l for l in text.split("\n")
                     if not l.startswith("  decoder:"))
    text = text.replace("  status_interval: 1s\n",
                        "  status_interval: 1s\n  decoder: %s\n" % decoder, 1)
    with open(path, "w") as f:
        f.write(text)
    return path


def test():
    c = h.Cluster()
    c.sql(SETUP)
    outs = {d: os.path.join(c.tmp, d + ".jsonl")
            for d in ("wal2json", "pgoutput")}
    daemons = {d: h.start_walcastd(write(c, "diff_" + d, d, outs[d]), c.tmp,
                                   name="walcastd-" + d)
               for d in outs}
    for sql in WORKLOAD:
        c.sql(sql)
    c.wait_flushed()
    want_lines = None
    counters = {d: h.LineCounter(outs[d]) for d in outs}
    # the last transaction's 982 changes are in both when both are done
    h.wait_until(lambda: all(counters[d]() >= 1000 for d in outs),
                 timeout=60, what="both files")
    h.wait_until(lambda: counters["wal2json"]() == counters["pgoutput"](),
                 timeout=30, what="the same number of lines")
    for d in daemons.values():
        d.stop()
        for line in d.stderr().splitlines():
            check(not line.startswith("<3>"), "an error: " + line)
    w2j = h.read_jsonl(outs["wal2json"])
    pgo = h.read_jsonl(outs["pgoutput"])
    want_lines = len(w2j)
    check(want_lines > 1000, "only %d lines" % want_lines)
    kinds = {(e["op"], e.get("table")) for e in w2j}
    for k in [("insert", "tickets"), ("update", "tickets"),
              ("delete", "tickets"), ("truncate", "tr1"),
              ("truncate", "tr2"), ("message", None), ("update", "full_t"),
              ("update", "idx_t"), ("insert", "later"),
              ("insert", "Ta ble")]:
        check(k in kinds, "the workload lacks %r" % (k,))
    # the tickets' unchanged TOASTed column, under the default identity
    named = [e for e in pgo if e.get("missing")]
    check(named and all(e["op"] == "update" and e["missing"] == ["big"]
                        for e in named),
          "pgoutput's missing: %r" % [(e["op"], e.get("table"),
                                       e.get("missing")) for e in named])
    nans = sum(1 for e in pgo for col in e.get("columns", [])
               if col.get("value") in ("NaN", "Infinity", "-Infinity"))
    check(nans >= 3, "pgoutput kept %d NaN/Infinity values" % nans)
    probs = h.diff_changes([as_wal2json(e) for e in pgo], w2j,
                           "pgoutput vs wal2json")
    if probs:
        h.fail("the decoders differ beyond what is documented:\n  " +
               "\n  ".join(probs))
    h.log("%d lines, the same from both decoders but for %d NaN/Infinity "
          "and %d missing" % (want_lines, nans, len(named)))


if __name__ == "__main__":
    h.main(test)
