# SPDX-License-Identifier: MIT
"""source.decoder: pgoutput, what only it has: the publication.

walcastd creates the publication when it is missing, before the slot
(FOR TABLES IN SCHEMA for literal included schemas, FOR ALL TABLES
otherwise), never alters one that exists, streams through it, and says
clearly what is wrong: a missing publication with create_publication
false (exit 69), a slot made with the other plugin (both named, exit 78),
a role that may not create the publication (exit 1), and a publication
younger than the slot (the server's "publication ... does not exist",
explained).  `walcast slot create` makes the publication first too, and
`walcast slot status` shows the plugin.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, fail  # noqa: E402

GOV = "town6-govikon"


def cfg(c, slot, extra="", filt=None, dsn=None):
    path = os.path.join(c.tmp, slot + ".yaml")
    out = os.path.join(c.tmp, slot + ".jsonl")
    h.write_config(path, dsn or c.dsn(), slot, out, filt=filt,
                   extra="")
    # source keys go into the source section: after its first lines
    with open(path) as f:
        text = f.read()
    text = text.replace("  status_interval: 1s\n",
                        "  status_interval: 1s\n  decoder: pgoutput\n" +
                        extra, 1)
    if h.DECODER == "pgoutput":  # write_config added it already
        text = text.replace("  decoder: pgoutput\n", "", 1)
    with open(path, "w") as f:
        f.write(text)
    return path, out


def expect_exit(c, path, name, words, rc):
    p = h.Proc([h.binary("walcastd"), "-c", path], c.tmp, name=name)
    got = p.wait(timeout=45)
    err = p.stderr()
    missing = [w for w in words if w not in err]
    if got != rc or missing:
        fail("%s: exit %s (expected %d), stderr lacks %r:\n%s"
             % (name, got, rc, missing, err))
    h.log("%s: exit %d: %s" % (name, got, next(
        (l for l in err.splitlines() if l.startswith("<3>")), "")))


def pubs(c):
    return {r[0]: r[1] for r in c.sql(
        "SELECT pubname, puballtables FROM pg_publication")}


def case_stream(c):
    """Created publication (FOR TABLES IN SCHEMA), slot, a change through."""
    path, out = cfg(c, "pg_schema",
                    filt={"schemas": {"include": [GOV]}})
    d = h.start_walcastd(path, c.tmp)
    check(d.stderr().count('created publication "pg_schema"') == 1,
          "no notice of the publication:\n" + d.stderr())
    check(pubs(c).get("pg_schema") == "f", "publication: %r" % pubs(c))
    schemas = c.sql("SELECT n.nspname FROM pg_publication_namespace pn "
                    "JOIN pg_publication p ON p.oid = pn.pnpubid "
                    "JOIN pg_namespace n ON n.oid = pn.pnnspid "
                    "WHERE p.pubname = 'pg_schema'")
    check(schemas == [[GOV]], "FOR TABLES IN SCHEMA %r" % schemas)
    check(c.slot("pg_schema")["plugin"] == "pgoutput",
          "slot plugin: %r" % c.slot("pg_schema"))
    c.sql('INSERT INTO "%s".t VALUES (1, \'NaN\'); '
          'INSERT INTO public.other VALUES (1)' % GOV)
    cnt = h.LineCounter(out)
    h.wait_until(lambda: cnt() >= 1, timeout=30, what="1 line")
    d.stop()
    lines = h.read_jsonl(out)
    check(len(lines) == 1 and lines[0]["table"] == "t",
          "only the schema's table: %r" % lines)
    cols = {x["name"]: x["value"] for x in lines[0]["columns"]}
    check(cols == {"id": h.RawNum("1"), "n": "NaN"},
          "values (NaN exact): %r" % cols)
    e = lines[0]
    check(h.lsn_int(e["lsn"]) <= h.lsn_int(e["commit_lsn"]) <
          h.lsn_int(e["end_lsn"]), "lsn <= commit_lsn < end_lsn: %r" % e)
    st = c.slot("pg_schema")
    h.wait_until(lambda: h.lsn_int(c.slot("pg_schema")["confirmed_flush_lsn"])
                 >= h.lsn_int(e["end_lsn"]), timeout=10,
                 what="the end_lsn confirmed")
    del st
    r = h.walcast("slot", "status", "-c", path)
    check(r.returncode == 0 and "plugin: pgoutput" in r.stdout,
          "slot status: %s %s" % (r.stdout, r.stderr))


BIG = "".join("%08x" % ((i * 2654435761) & 0xffffffff) for i in range(1500))


def case_missing_toast(c):
    """An unchanged TOASTed value: out of the row, and named in the
    plugins' `missing` (the jsonl plugin writes it), which wal2json cannot
    fill."""
    so = os.environ.get("WC_JSONL_SO")
    if not so:
        fail("WC_JSONL_SO (the jsonl plugin) is not set or not built")
    c.sql("CREATE TABLE public.toasty (id int PRIMARY KEY, small text, "
          "big text); ALTER TABLE public.toasty ALTER big SET STORAGE "
          "EXTERNAL")
    jsonl = os.path.join(c.tmp, "missing.jsonl")
    path, out = cfg(c, "pg_missing_toast")
    with open(path, "a") as f:
        f.write("  - plugin:\n      path: %s\n      config:\n"
                "        file: %s\n        fsync: \"false\"\n"
                % (h.yq(so), h.yq(jsonl)))
    d = h.start_walcastd(path, c.tmp)
    c.sql("INSERT INTO public.toasty VALUES (1, 'a', '%s');"
          "UPDATE public.toasty SET small = 'b' WHERE id = 1;" % BIG)
    cnt = h.LineCounter(jsonl)
    h.wait_until(lambda: cnt() >= 2, timeout=30, what="2 jsonl lines")
    d.stop()
    upd = [e for e in h.read_jsonl(jsonl) if e.get("signal") == "update"]
    check(len(upd) == 1, "updates: %r" % upd)
    names = [col["name"] for col in upd[0]["columns"]]
    check(names == ["id", "small"], "columns: %r" % names)
    check(upd[0].get("missing") == ["big"],
          "missing: %r (expected [\"big\"])" % upd[0].get("missing"))
    fupd = [e for e in h.read_jsonl(out) if e["op"] == "update"]
    check(len(fupd) == 1 and "big" not in
          [col["name"] for col in fupd[0]["columns"]],
          "the file sink's update: %r" % fupd)
    c.sql("DROP TABLE public.toasty")


def case_existing_kept(c):
    """An existing publication is used as it is, never altered."""
    c.sql('CREATE PUBLICATION mine FOR TABLE "%s".t' % GOV)
    path, out = cfg(c, "pg_kept", "  publication: mine\n")
    d = h.start_walcastd(path, c.tmp)
    c.sql('INSERT INTO "%s".t VALUES (2, 1.5); INSERT INTO public.other '
          'VALUES (2)' % GOV)
    cnt = h.LineCounter(out)
    h.wait_until(lambda: cnt() >= 1, timeout=30, what="1 line")
    d.stop()
    check("created publication" not in d.stderr(), d.stderr())
    tables = c.sql("SELECT schemaname, tablename FROM pg_publication_tables "
                   "WHERE pubname = 'mine'")
    check(tables == [[GOV, "t"]], "publication altered: %r" % tables)
    check("pg_kept" not in pubs(c), "made another publication: %r" % pubs(c))
    lines = h.read_jsonl(out)
    check([x["table"] for x in lines] == ["t"], "lines: %r" % lines)


def case_missing(c):
    path, _ = cfg(c, "pg_missing", "  create_publication: false\n")
    expect_exit(c, path, "publication missing",
                ['publication "pg_missing" does not exist',
                 "create_publication is false"], 69)
    check(c.slot("pg_missing") is None, "a slot was created")


def case_other_plugin(c):
    c.sql("SELECT pg_create_logical_replication_slot('pg_w2j', 'wal2json')")
    path, _ = cfg(c, "pg_w2j")
    expect_exit(c, path, "slot of the other plugin",
                ['"wal2json"', "pgoutput", "source.decoder"], 78)
    c.sql("SELECT pg_drop_replication_slot('pg_w2j')")


def case_no_privilege(c):
    c.sql("CREATE ROLE rep LOGIN REPLICATION PASSWORD 'rep'")
    c.hba_prepend(["host all rep 127.0.0.1/32 md5",
                   "host replication rep 127.0.0.1/32 md5"])
    path, _ = cfg(c, "pg_noprivs", dsn=c.dsn(user="rep", password="rep"))
    expect_exit(c, path, "no privilege",
                ['could not create publication "pg_noprivs"',
                 "superuser"], 1)
    check(c.slot("pg_noprivs") is None, "a slot was created")


def case_too_young(c):
    """A slot older than its publication: the server's error explained."""
    c.sql("SELECT pg_create_logical_replication_slot('pg_young', "
          "'pgoutput')")
    c.sql('INSERT INTO "%s".t VALUES (3, 3)' % GOV)
    path, _ = cfg(c, "pg_young")
    expect_exit(c, path, "publication younger than the slot",
                ['publication "pg_young" does not exist',
                 "create the publication before the slot"], 69)
    c.sql("SELECT pg_drop_replication_slot('pg_young')")


def case_slot_create(c):
    """walcast slot create: the publication, then the slot."""
    path, _ = cfg(c, "pg_cli")
    r = h.walcast("slot", "create", "-c", path)
    check(r.returncode == 0, "slot create: %s" % r.stderr)
    check('created publication "pg_cli"' in r.stdout, r.stdout)
    check(pubs(c).get("pg_cli") == "t", "FOR ALL TABLES: %r" % pubs(c))
    check(c.slot("pg_cli")["plugin"] == "pgoutput", "%r" % c.slot("pg_cli"))
    r = h.walcast("slot", "drop", "-c", path)
    check(r.returncode == 0, r.stderr)


def test():
    c = h.Cluster()
    c.sql('CREATE SCHEMA "{s}"; CREATE TABLE "{s}".t (id int PRIMARY KEY, '
          'n numeric); CREATE TABLE public.other (id int PRIMARY KEY);'
          .format(s=GOV))
    cases = h.Cases()
    cases.run("stream through a created publication", case_stream, c)
    cases.run("an existing publication is kept", case_existing_kept, c)
    cases.run("unchanged TOAST named in missing", case_missing_toast, c)
    cases.run("publication missing", case_missing, c)
    cases.run("slot of the other plugin", case_other_plugin, c)
    cases.run("no privilege to create", case_no_privilege, c)
    cases.run("publication younger than the slot", case_too_young, c)
    cases.run("walcast slot create", case_slot_create, c)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
