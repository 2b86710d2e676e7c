# SPDX-License-Identifier: MIT
"""Server settings that shape wal2json's text do not change walcast's.

walcast pins DateStyle, IntervalStyle, TimeZone, extra_float_digits,
bytea_output, lc_monetary, search_path and quote_all_identifiers on its
replication connection.  One workload is read through one slot per run:
first with the server's defaults, then with each hostile setting set for
the database (ALTER DATABASE ... SET) and for the role (ALTER ROLE ...
SET).  The file sink's output of every run is byte-identical to the
first: values (bytea, floats, intervals, timestamps, money), commit
times and type names (tenants' same-named types stay told apart).
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

HOSTILE = [
    ("bytea_output", "escape"),
    ("extra_float_digits", "-15"),
    ("IntervalStyle", "sql_standard"),
    ("IntervalStyle", "iso_8601"),
    ("TimeZone", "UTC-16"),
    ("TimeZone", "America/St_Johns"),
    ("DateStyle", "SQL, DMY"),
    ("search_path", "t1, public"),
    ("search_path", "\"t1\""),
    ("quote_all_identifiers", "on"),
]


def other_locale():
    """A locale other than C for lc_monetary, or None."""
    try:
        names = subprocess.run(["locale", "-a"], stdout=subprocess.PIPE,
                               text=True).stdout.split()
    except OSError:
        return None
    for want in ("de_DE.utf8", "fr_FR.utf8", "en_US.utf8", "en_GB.utf8"):
        if want in names:
            return want
    return None


WORKLOAD = r"""
CREATE SCHEMA t1;
CREATE TYPE public.mood AS ENUM ('happy', 'sad');
CREATE TYPE t1.mood AS ENUM ('sad', 'happy');
CREATE DOMAIN public.dom AS text;
CREATE TABLE t1.v (id int PRIMARY KEY, b bytea, f8 float8, f4 float4,
  iv interval, iv2 interval, tz timestamptz, ts timestamp, d date,
  tm timetz, m money, pm public.mood, tm1 t1.mood, dm public.dom,
  pt point, n numeric, ta timestamptz[]);
"""

ROW = (r"INSERT INTO t1.v VALUES (%d, '\x68656c6c6f00ff'::bytea, "
       r"1234567.891011, 1.1, '1 year 2 mons 3 days 04:05:06.5', "
       r"'-1 day 02:00:00', '2026-01-02 03:04:05.678901+00', "
       r"'2026-01-02 03:04:05.678901', '2026-12-31', '23:59:59+05:30', "
       r"1234567.89, 'happy', 'sad', 'x', '(1.1,2.2)', 1.5, "
       r"ARRAY['1900-01-01 00:00:00+00'::timestamptz]);")


NUMERIC_WARNING = ("wal2json on %s does not know the option "
                   "numeric-data-types-as-string: NaN and Infinity in real, "
                   "double precision and numeric columns arrive as null; "
                   "upgrade wal2json (2.6 or later) to keep them")


def knows_numeric_option(c):
    """Does the server's wal2json take numeric-data-types-as-string?"""
    c.sql("SELECT pg_create_logical_replication_slot('probe', 'wal2json')")
    try:
        return c.sql("SELECT count(*) FROM pg_logical_slot_peek_changes("
                     "'probe', NULL, 0, 'numeric-data-types-as-string', '1')",
                     check=False) is not None
    finally:
        c.sql("SELECT pg_drop_replication_slot('probe')")


def run(c, slot, name, numeric_ok=None):
    out = os.path.join(c.tmp, name + ".jsonl")
    cfg = h.write_config(os.path.join(c.tmp, name + ".yaml"), c.dsn(), slot,
                         out)
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-" + name, ready=False)
    cnt = h.LineCounter(out)
    h.wait_until(lambda: cnt() >= 4 or d.poll() is not None, timeout=60,
                 what="%s: 4 lines" % name)
    check(d.poll() is None, "%s: walcastd stopped\n%s" % (name, d.describe()))
    d.stop()
    if numeric_ok is not None:
        # an older wal2json: the stream goes on without the option, and
        # says what that costs, once
        warned = d.stderr().count(NUMERIC_WARNING % ("127.0.0.1:%d" % c.port))
        check(warned == (0 if numeric_ok else 1),
              "%s: the numeric option warning %d times (wal2json %s it)\n%s"
              % (name, warned, "knows" if numeric_ok else "does not know",
                 d.describe()))
    with open(out, "rb") as f:
        return f.read()


def test():
    c = h.Cluster(conf={"max_replication_slots": "40",
                        "max_wal_senders": "10"})
    c.sql(WORKLOAD)
    loc = other_locale()
    settings = list(HOSTILE)
    settings.append(("lc_monetary", loc or "C.utf8"))
    runs = [("base", None, None)]
    for k, v in settings:
        runs.append(("db", k, v))
        runs.append(("role", k, v))
    for i in range(len(runs)):
        c.sql("SELECT pg_create_logical_replication_slot('s%d', 'wal2json')"
              % i)
    c.sql(ROW % 1 + ROW % 2 + "UPDATE t1.v SET f8 = -0.1 WHERE id = 1;"
          "DELETE FROM t1.v WHERE id = 2;")

    base, bad = None, []
    for i, (level, k, v) in enumerate(runs):
        name = "s%d-%s" % (i, level if k is None else
                           "%s-%s" % (level, k.lower()))
        # search_path takes a list of names, the others a string
        lit = v if k == "search_path" else (
            "'%s'" % v.replace("'", "''") if v is not None else None)
        if level == "db":
            c.sql("ALTER DATABASE postgres SET %s = %s" % (k, lit))
        elif level == "role":
            c.sql("ALTER ROLE postgres SET %s = %s" % (k, lit))
        try:
            if k is not None:
                # the setting is in force for a new session
                got = c.sql_value("SHOW %s" % k)
                def norm(x):
                    return x.replace(" ", "").replace('"', "")
                check(norm(got) == norm(v), "%s: SHOW %s says %r"
                      % (name, k, got))
            text = run(c, "s%d" % i, name,
                       knows_numeric_option(c) if i == 0 else None)
        finally:
            if level == "db":
                c.sql("ALTER DATABASE postgres RESET ALL")
            elif level == "role":
                c.sql("ALTER ROLE postgres RESET ALL")
        if base is None:
            base = text
            lines = base.decode().splitlines()
            check(len(lines) == 4, "base: %d lines" % len(lines))
            cols = {col["name"]: col for col in h.loads(lines[0])["columns"]}
            # the values as the pinned settings print them
            want = {"b": "68656c6c6f00ff", "f8": h.RawNum("1234567.891011"), "f4": h.RawNum("1.1"),
                    "iv": "1 year 2 mons 3 days 04:05:06.5",
                    "iv2": "-1 days +02:00:00",
                    "tz": "2026-01-02 03:04:05.678901+00",
                    "d": "2026-12-31", "m": "$1,234,567.89",
                    "pm": "happy", "tm1": "sad",
                    "ta": '{"1900-01-01 00:00:00+00"}'}
            for col, val in want.items():
                check(cols[col]["value"] == val, "base: %s is %r, not %r"
                      % (col, cols[col]["value"], val))
            for col, ty in (("pm", "public.mood"), ("tm1", "t1.mood"),
                            ("dm", "public.dom")):
                check(cols[col]["type"] == ty, "base: %s has type %r, not %r"
                      % (col, cols[col]["type"], ty))
            h.log("base: %d bytes" % len(base))
            continue
        if text != base:
            a, b = base.decode().splitlines(), text.decode().splitlines()
            diff = [(x, y) for x, y in zip(a, b) if x != y][:1]
            bad.append("%s = %s for the %s: output differs from the "
                       "defaults'\n  base: %s\n   got: %s"
                       % (k, v, "database" if level == "db" else "role",
                          diff[0][0] if diff else a,
                          diff[0][1] if diff else b))
            h.log("%s: DIFFERS" % name)
            continue
        h.log("%s: identical" % name)
    check(not bad, "\n".join(bad))
    if not loc:
        h.log("no locale but C here: lc_monetary was set to C.utf8, whose "
              "money text is C's")


if __name__ == "__main__":
    h.main(test)
