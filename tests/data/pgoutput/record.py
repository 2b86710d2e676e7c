#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Records real pgoutput messages from a throwaway PostgreSQL 15 cluster
into recorded.txt (format: README.md here), for the decoder's unit tests
and the fuzz target's seeds.  Run from the repository root:
    python3 tests/data/pgoutput/record.py
The messages are read with pg_logical_slot_peek_binary_changes() under the
settings walcast pins on its replication connection."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integration"))

from wctest.cluster import Cluster  # noqa: E402

SETUP = r'''
CREATE SCHEMA "town6-govikon";
CREATE TYPE "town6-govikon".status AS ENUM ('open', 'closed');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TABLE "town6-govikon".tickets (
  id bigint PRIMARY KEY, title character varying(20), price numeric(10,2),
  st "town6-govikon".status, at timestamp with time zone, ok boolean,
  b bytea, r real, d double precision, n numeric, tags text[],
  doc jsonb, big text, p positive, c character(3), u uuid);
CREATE TABLE public."Quoted ""T""" ("Id" integer PRIMARY KEY, v text);
CREATE TABLE public.full_t (a integer, t text, c integer);
ALTER TABLE public.full_t REPLICA IDENTITY FULL;
CREATE TABLE public.idx_t (a integer NOT NULL, b integer NOT NULL, v text,
  PRIMARY KEY (a));
CREATE UNIQUE INDEX idx_t_b ON public.idx_t (b);
ALTER TABLE public.idx_t REPLICA IDENTITY USING INDEX idx_t_b;
CREATE PUBLICATION rec FOR ALL TABLES;
'''

WORKLOAD = r'''
INSERT INTO "town6-govikon".tickets VALUES
  (1, 'first', 12.50, 'open', '2026-11-25 13:48:23.57043+00', true,
   '\xdead', 'NaN', '-Infinity', 'Infinity', '{a,"b c"}',
   '{"k": [1, "x\ny"]}', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i), 5, 'ab', gen_random_uuid());
INSERT INTO "town6-govikon".tickets (id, title, big) VALUES
  (2, E'tab\there "q" \\ é', NULL);
UPDATE "town6-govikon".tickets SET title = 'second' WHERE id = 1;
UPDATE "town6-govikon".tickets SET id = 3 WHERE id = 2;
DELETE FROM "town6-govikon".tickets WHERE id = 3;
INSERT INTO public."Quoted ""T""" VALUES (1, 'q');
INSERT INTO public.full_t VALUES (1, (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i), 7);
UPDATE public.full_t SET c = 8;
DELETE FROM public.full_t;
INSERT INTO public.idx_t VALUES (1, 10, 'v');
UPDATE public.idx_t SET v = 'w';
UPDATE public.idx_t SET b = 11;
DELETE FROM public.idx_t;
BEGIN;
SELECT pg_logical_emit_message(true, 'walcast', 'tx');
SELECT pg_logical_emit_message(false, 'walcast', '\x00ff'::bytea);
COMMIT;
TRUNCATE public.full_t, public.idx_t;
ALTER TABLE public."Quoted ""T""" ADD COLUMN extra integer;
INSERT INTO public."Quoted ""T""" VALUES (2, 'r', 3);
CHECKPOINT;
'''

PINNED = ("SET datestyle=ISO; SET intervalstyle=postgres; "
          "SET timezone=UTC; SET extra_float_digits=3; "
          "SET bytea_output=hex; SET lc_monetary='C'; SET search_path='';")


def main():
    c = Cluster()
    try:
        c.sql(SETUP)
        c.sql("SELECT pg_create_logical_replication_slot('rec', 'pgoutput')")
        c.sql(WORKLOAD)
        rows = c.sql(PINNED + """
            SELECT lsn, encode(data, 'hex')
            FROM pg_logical_slot_peek_binary_changes('rec', NULL, NULL,
                'proto_version', '2', 'publication_names', 'rec',
                'messages', 'true')""")
        types = c.sql(PINNED + """
            SELECT t.oid, format_type(t.oid, NULL)
            FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema',
                                    'pg_toast')""")
        rels = c.sql(PINNED + """
            SELECT c.oid, string_agg(a.attname, ' ' ORDER BY a.attnum)
            FROM pg_class c JOIN pg_index i ON i.indrelid = c.oid
              AND i.indisprimary
            JOIN pg_attribute a ON a.attrelid = c.oid
              AND a.attnum = ANY(i.indkey)
            WHERE c.relnamespace NOT IN ('pg_catalog'::regnamespace,
                                         'pg_toast'::regnamespace)
            GROUP BY c.oid""")
    finally:
        c.stop()
    with open(os.path.join(HERE, "recorded.txt"), "w") as f:
        f.write("# recorded by record.py from PostgreSQL 15, pgoutput "
                "proto_version 2 (README.md)\n")
        for oid, name in types:
            f.write("type %s %s\n" % (oid, name))
        for oid, names in rels:
            f.write("pk %s %s\n" % (oid, names))
        for lsn, data in rows:
            f.write("msg %s %s\n" % (lsn, data))
    print("%d messages" % len(rows))


if __name__ == "__main__":
    main()
