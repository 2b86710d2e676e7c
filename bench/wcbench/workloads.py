# SPDX-License-Identifier: MIT
"""Schemas and workloads.  Everything is generated inside the server
(PL/pgSQL), so the client costs nothing while the WAL is written."""

import time

from .procs import log

# bench/run's default sizes (bench/compare and bench/kafka-floor use them)
DEFAULT_SIZES = {"small_txns": 30000, "small_per": 5, "big_rows": 300000,
                 "wide_rows": 15000, "wide_kb": 8}


def changes_of(name, z):
    """The changes workload `name` writes at sizes z, by its definition
    below."""
    return {"small": z["small_txns"] * z["small_per"],
            "big": z["big_rows"],
            "update": z["big_rows"] // 3,
            "delete": z["big_rows"] // 2,
            "wide": z["wide_rows"]}[name]


TENANTS = ["town6-govikon", "town6-hinwil", "org-acme", "org-globex"]
BIG = '"town6-govikon".big'
WIDE = '"org-acme".documents'

# The columns of a ticket: bigint, text, text, numeric, timestamptz, int,
# text[], text -- about 450 bytes of wal2json JSON per insert.
TICKET_COLS = ("id bigint PRIMARY KEY, title text NOT NULL, "
               "status text NOT NULL, amount numeric(12,2) NOT NULL, "
               "opened timestamptz NOT NULL, assignee int, tags text[], "
               "body text")


def ticket_values(g):
    """SELECT list producing a ticket row for bigint expression g."""
    return ("{g}, 'ticket ' || {g}, 'open', ({g} % 100000) / 100.0, "
            "timestamptz '2025-01-01 00:00:00+00' + {g} * interval '1 s', "
            "({g} % 50)::int, ARRAY['tenant', 'prio' || ({g} % 3)], "
            "repeat(md5({g}::text), 3)").format(g=g)


def setup_sql():
    s = ["CREATE SCHEMA walcast_bench",
         "CREATE SEQUENCE walcast_bench.txn_seq"]
    for t in TENANTS:
        s.append('CREATE SCHEMA "%s"' % t)
        s.append('CREATE TABLE "%s".tickets (%s)' % (t, TICKET_COLS))
    s.append("CREATE TABLE %s (%s)" % (BIG, TICKET_COLS))
    s.append("CREATE TABLE %s (id int PRIMARY KEY, title text NOT NULL, "
             "body text NOT NULL, doc jsonb NOT NULL, "
             "updated timestamptz NOT NULL)" % WIDE)
    # uncompressed and out of line: every body is a TOAST pointer
    s.append("ALTER TABLE %s ALTER body SET STORAGE EXTERNAL" % WIDE)
    # pgoutput's consumers read every table through it; made before any
    # slot (consumers.py)
    s.append("CREATE PUBLICATION walcast_bench FOR ALL TABLES")

    # One small transaction's work (no commit): `per` changes in the
    # tenant chosen by n: per-2 inserts, an update and a delete of rows it
    # inserted (per >= 3).  Ids come from a sequence (not decoded), so
    # workloads never collide.
    branches = []
    for i, t in enumerate(TENANTS):
        tbl = '"%s".tickets' % t
        branches.append(
            "WHEN %d THEN\n"
            "  INSERT INTO %s SELECT %s FROM generate_series(base, "
            "base + per - 3) g;\n"
            "  UPDATE %s SET status = 'closed', amount = amount + 1 "
            "WHERE id = base;\n"
            "  DELETE FROM %s WHERE id = base + 1;"
            % (i, tbl, ticket_values("g"), tbl, tbl))
    s.append("""CREATE FUNCTION walcast_bench.txn(per int) RETURNS void
LANGUAGE plpgsql AS $f$
DECLARE
  n bigint := nextval('walcast_bench.txn_seq');
  base bigint := n * 1000;
BEGIN
  CASE n %% 4
  %s
  END CASE;
END $f$""" % "\n  ".join(branches))
    # ntx small transactions, each committed
    s.append("""CREATE PROCEDURE walcast_bench.small(ntx int, per int)
LANGUAGE plpgsql AS $p$
BEGIN
  FOR i IN 1..ntx LOOP
    PERFORM walcast_bench.txn(per);
    COMMIT;
  END LOOP;
END $p$""")
    # small transactions at a fixed offered rate (changes/s) for secs
    # seconds: open loop, each transaction starts when it is due.
    s.append("""CREATE PROCEDURE walcast_bench.paced(rate int, secs float8,
                                             per int)
LANGUAGE plpgsql AS $p$
DECLARE
  t0 timestamptz := clock_timestamp();
  el float8;
  done bigint := 0;
  due bigint;
BEGIN
  LOOP
    el := extract(epoch FROM clock_timestamp() - t0);
    EXIT WHEN el >= secs;
    due := floor(el * rate / per);
    WHILE done < due LOOP
      PERFORM walcast_bench.txn(per);
      COMMIT;
      done := done + 1;
    END LOOP;
    PERFORM pg_sleep(0.0005);
  END LOOP;
END $p$""")
    # wide rows in transactions of `batch` rows: a body of kb KiB (TOAST,
    # external) and a jsonb document of ~3 KB (compressed inline or toasted)
    s.append("""CREATE PROCEDURE walcast_bench.wide(nrows int, kb int,
                                            batch int)
LANGUAGE plpgsql AS $p$
DECLARE
  first int := coalesce((SELECT max(id) FROM %s), 0) + 1;
BEGIN
  FOR b IN 0..(nrows - 1) / batch LOOP
    INSERT INTO %s
    SELECT g, 'document ' || g,
           repeat(md5(g::text) || md5((g + 1)::text), kb * 16),
           jsonb_build_object(
             'id', g, 'kind', 'invoice', 'paid', g %% 2 = 0,
             'total', (g %% 10000) / 100.0,
             'tags', jsonb_build_array('a', 'b' || g %% 7, 'c"q"'),
             'lines', (SELECT jsonb_agg(jsonb_build_object(
                         'n', k, 'sku', md5(k || '/' || g),
                         'qty', k %% 7, 'note', 'line ' || k || E'\\tx'))
                       FROM generate_series(1, 25) k)),
           timestamptz '2025-01-01 00:00:00+00' + g * interval '1 s'
    FROM generate_series(first + b * batch,
                         first + least((b + 1) * batch, nrows) - 1) g;
    COMMIT;
  END LOOP;
END $p$""" % (WIDE, WIDE))
    return ";\n".join(s) + ";"


class Workload:
    """name, description(sizes) -> str, sql(sizes) -> str."""

    def __init__(self, name, describe, sql, needs=None):
        self.name, self.describe, self.sql, self.needs = \
            name, describe, sql, needs


def _big_sql(z):
    return "TRUNCATE %s; INSERT INTO %s SELECT %s FROM generate_series(1, %d)"\
        " g" % (BIG, BIG, ticket_values("g"), z["big_rows"])


WORKLOADS = [
    Workload("baseline",
             lambda z: "one transaction of %d changes: the fixed cost of a "
             "run (start, connect, catch up, stop)" % z["small_per"],
             lambda z: "CALL walcast_bench.small(1, %d)" % z["small_per"]),
    Workload("small",
             lambda z: "%d transactions of %d changes (%d inserts, 1 update,"
             " 1 delete) over 4 tenant schemas"
             % (z["small_txns"], z["small_per"], z["small_per"] - 2),
             lambda z: "CALL walcast_bench.small(%d, %d)"
             % (z["small_txns"], z["small_per"])),
    # The TRUNCATE that resets the table runs before the slots exist (see
    # prepare), so the measured WAL is the INSERT transaction alone.
    Workload("big",
             lambda z: "one transaction of %d inserts" % z["big_rows"],
             lambda z: "INSERT INTO %s SELECT %s FROM generate_series(1, %d)"
             " g" % (BIG, ticket_values("g"), z["big_rows"])),
    Workload("update",
             lambda z: "one UPDATE of every third row of the big table "
             "(%d rows)" % (z["big_rows"] // 3),
             lambda z: "UPDATE %s SET status = 'closed', amount = amount + 1"
             " WHERE id %% 3 = 0" % BIG,
             needs="big"),
    Workload("delete",
             lambda z: "one DELETE by primary key of half the big table "
             "(%d rows)" % (z["big_rows"] // 2),
             lambda z: "DELETE FROM %s WHERE id %% 2 = 0" % BIG,
             needs="big"),
    Workload("wide",
             lambda z: "%d wide rows (%d KiB TOASTed text + ~3 KB jsonb) in "
             "transactions of 100" % (z["wide_rows"], z["wide_kb"]),
             lambda z: "CALL walcast_bench.wide(%d, %d, 100)"
             % (z["wide_rows"], z["wide_kb"])),
]

BY_NAME = {w.name: w for w in WORKLOADS}


def prepare_sql(name, z):
    """SQL run before a workload's slots are created (not measured)."""
    if name == "big":
        return "TRUNCATE %s" % BIG
    return None


def ensure_big_sql(z):
    """Fills the big table (outside any measurement) when a workload that
    needs it runs without 'big' before it."""
    return _big_sql(z)


def write(cl, wl, z, done, slots):
    """Writes workload wl at sizes z into cluster cl for the slots named:
    first what it needs (the big table, filled once: `done` holds what the
    cluster has) and its preparation, then the slots, so that they start
    right before it, then the workload.  Returns (its end position, the
    seconds it took to write and flush)."""
    if wl.needs and wl.needs not in done:
        log("filling the big table for %s (not measured)" % wl.name)
        cl.sql(ensure_big_sql(z))
        done.add(wl.needs)
    prep = prepare_sql(wl.name, z)
    if prep:
        cl.sql(prep)
    for s in slots:
        cl.create_slot(s)
    log("%s: %s" % (wl.name, wl.describe(z)))
    t0 = time.monotonic()
    cl.sql(wl.sql(z))
    end = cl.end_position()
    done.add(wl.name)
    return end, time.monotonic() - t0
