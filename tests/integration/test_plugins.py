# SPDX-License-Identifier: MIT
"""Plugins loaded by walcastd: signals, sender filters, bulk deletes,
failures and replays, refusal of writable plugins, the jsonl plugin.

Uses the test plugin tests/recorder (WC_RECORDER_SO), which appends one
JSON line per signal it receives, and plugins/jsonl (WC_JSONL_SO) when it
is built.

1. fan-out: one walcastd, several recorders with different sender filters
   (exact schema, namespace, any, plugin-level `schemas`, a glob with a
   table pattern), one connected to bulk_delete only, one to delete only,
   one acknowledging its commits later (WALCAST_PENDING + host->ack).  Each
   gets exactly the changes of its schemas; 10,000 deleted rows arrive as
   10 bulk_delete signals of 1000 keys and as 10,000 delete signals.
2. failures: a recorder failing every Nth call; walcastd logs, backs off,
   replays: every change is eventually handled, none missing; the slot is
   never confirmed past a change the plugin has not handled.
3. a group-writable plugin (or directory) is refused with exit 78.
4. jsonl: one line per signal; SIGHUP reopens the file (logrotate).
"""

import collections
import fnmatch
import json
import os
import re
import shutil
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, fail  # noqa: E402

GOV, BERN, ACME = "town6-govikon", "town6-bern", "org-acme"
SCHEMAS = (GOV, BERN, ACME)
BATCH = 1000            # bulk_delete_batch
BIG_INSERT = 12000      # rows inserted into GOV.tickets
BIG_DELETE = 10000      # of which deleted in one statement

# failure case: every FAIL_EVERY-th data handler call fails
FAIL_EVERY = 100
FAIL_TXNS = 100         # transactions of FAIL_TXN_INSERTS + FAIL_TXN_UPDATES
FAIL_TXN_INSERTS = 16
FAIL_TXN_UPDATES = 4
FAIL_PACE = 0.35        # seconds between transactions

DATA_KINDS = ("insert", "update", "delete", "bulk_delete", "truncate")


def recorder_so():
    p = os.environ.get("WC_RECORDER_SO")
    if not p:
        fail("WC_RECORDER_SO is not set (the recorder plugin target is "
             "not built)")
    check(os.path.isfile(p), "WC_RECORDER_SO=%s does not exist" % p)
    return p


def plugin_sink(path, config, schemas=None):
    """YAML text of one `- plugin:` sink item."""
    lines = ["  - plugin:", "      path: " + h.yq(path)]
    if schemas is not None:
        lines.append("      schemas: [%s]"
                     % ", ".join(h.yq(s) for s in schemas))
    lines.append("      config:")
    for k, v in config.items():
        lines.append("        %s: %s" % (k, h.yq(str(v))))
    return "\n".join(lines) + "\n"


def write_plugin_config(c, name, slot, sinks, status_interval="1s"):
    extra = ("signals:\n  bulk_delete_batch: %d\nsinks:\n" % BATCH
             + "".join(sinks))
    return h.write_config(os.path.join(c.tmp, name + ".yaml"), c.dsn(), slot,
                          None, status_interval=status_interval, extra=extra)


def read_records(path, complete_only=False):
    return h.read_jsonl(path, complete_only=complete_only)


def data_records(recs):
    return [r for r in recs if r.get("kind") in DATA_KINDS]


def split_schema(schema):
    if "-" in schema:
        ns, tenant = schema.split("-", 1)
        return ns, tenant
    return schema, ""


def drop_slot(c, slot):
    c.sql("SELECT pg_drop_replication_slot('%s') FROM pg_replication_slots "
          "WHERE slot_name = '%s'" % (slot, slot))


# --------------------------------------------------------------------------
# expectations from the wal2json oracle

def oracle_key(e):
    """The key values of an oracle change, as the recorder writes them."""
    if e["op"] in ("insert", "update"):
        vals = {col["name"]: col["value"] for col in e["columns"]}
        return [vals.get(p["name"]) for p in e.get("pk", [])]
    if e["op"] == "delete":
        return [col["value"] for col in e["identity"]]
    return None


def jkey(v):
    return None if v is None else json.dumps(v, sort_keys=True)


def bulk_groups(changes, batch):
    """The bulk_delete signals the changes make: runs of consecutive deletes
    of one table in one transaction, cut into pieces of at most batch keys.
    [(schema, table, lsn of the first row, [key, ...])]"""
    out, run, run_id = [], [], None

    def flush():
        for i in range(0, len(run), batch):
            part = run[i:i + batch]
            out.append((run_id[1], run_id[2], part[0]["lsn"],
                        [oracle_key(e) for e in part]))
    for e in changes:
        ident = (str(e.get("xid")), e.get("schema"), e.get("table"))
        if e["op"] == "delete" and ident == run_id:
            run.append(e)
            continue
        if run:
            flush()
        run, run_id = ([e], ident) if e["op"] == "delete" else ([], None)
    if run:
        flush()
    return out


def expected_tuples(changes, groups, schema_ok, kinds):
    """Counter of (kind, schema, table, lsn, key) a recorder must get."""
    want = collections.Counter()
    for e in changes:
        if e["op"] not in kinds or e["op"] == "message":
            continue
        if not schema_ok(e["schema"], e["table"]):
            continue
        want[(e["op"], e["schema"], e["table"], e["lsn"],
              jkey(oracle_key(e)))] += 1
    if "bulk_delete" in kinds:
        for schema, table, lsn, keys in groups:
            if schema_ok(schema, table):
                want[("bulk_delete", schema, table, lsn, jkey(keys))] += 1
    return want


def got_tuples(recs):
    got = collections.Counter()
    for r in data_records(recs):
        key = r.get("keys") if r["kind"] == "bulk_delete" else r.get("key")
        got[(r["kind"], r.get("schema"), r.get("table"), r.get("lsn"),
             jkey(key))] += 1
    return got


def describe_diff(name, got, want):
    missing = want - got
    extra = got - want
    kinds_g = collections.Counter(t[0] for t in got.elements())
    kinds_w = collections.Counter(t[0] for t in want.elements())
    return ("recorder %s: %d signals (%s), expected %d (%s); %d missing, "
            "e.g. %s; %d unexpected, e.g. %s"
            % (name, sum(got.values()), dict(kinds_g), sum(want.values()),
               dict(kinds_w), sum(missing.values()),
               [_short_t(t) for t in list(missing)[:4]], sum(extra.values()),
               [_short_t(t) for t in list(extra)[:4]]))


def _short_t(t):
    k = t[4]
    if k is not None and len(k) > 60:
        k = k[:60] + "..."
    return (t[0], t[1], t[2], t[3], k)


# --------------------------------------------------------------------------
# 1. fan-out by sender

RECORDERS = [
    # name, recorder config, plugin-level schemas, schema/table predicate,
    # kinds connected
    ("gov", {"sender": GOV}, None,
     lambda s, t: s == GOV, "all"),
    ("town6", {"sender": "town6"}, None,
     lambda s, t: s.startswith("town6-") or s == "town6", "all"),
    ("any", {}, None, lambda s, t: True, "all"),
    ("org", {}, ["org-*"], lambda s, t: fnmatch.fnmatchcase(s, "org-*"),
     "all"),
    ("glob", {"sender": "*-bern", "table": "draft*"}, None,
     lambda s, t: fnmatch.fnmatchcase(s, "*-bern")
     and fnmatch.fnmatchcase(t, "draft*"), "all"),
    ("bulk", {"kinds": "bulk_delete"}, None, lambda s, t: True,
     "bulk_delete"),
    ("del", {"kinds": "delete"}, None, lambda s, t: True, "delete"),
    ("pend", {"pending": "true"}, None, lambda s, t: True, "all"),
]
ALL_KINDS = ("begin", "insert", "update", "delete", "bulk_delete", "truncate",
             "message", "commit")


def setup_schemas(c):
    ddl = []
    for s in SCHEMAS:
        ddl.append('CREATE SCHEMA "%s";' % s)
        ddl.append('CREATE TABLE "%s".tickets (id bigint PRIMARY KEY, '
                   'title text);' % s)
    for s in (BERN, ACME):
        ddl.append('CREATE TABLE "%s".drafts (id bigint PRIMARY KEY, '
                   'title text);' % s)
    ddl.append('CREATE TABLE "%s".load (id bigint PRIMARY KEY, v text);'
               % BERN)
    c.sql("\n".join(ddl))


def fanout_workload(c):
    q = []
    # T1: inserts into all three schemas, interleaved, and a message
    q.append("BEGIN;")
    for i in range(1, 21):
        for s in SCHEMAS:
            q.append("INSERT INTO \"%s\".tickets VALUES (%d, 'ticket %d of "
                     "%s \"q\" \\ é');" % (s, 100000 + i, i, s))
    q.append("SELECT pg_logical_emit_message(true, 'rec', 'in txn');")
    q.append("COMMIT;")
    # T2: updates in all three
    for s in SCHEMAS:
        q.append("UPDATE \"%s\".tickets SET title = title || ' (upd)' "
                 "WHERE id %% 3 = 0;" % s)
    # T3, T4: 12,000 rows, then delete 10,000 of them in one statement
    q.append("INSERT INTO \"%s\".tickets SELECT g, 'bulk ' || g FROM "
             "generate_series(1, %d) g;" % (GOV, BIG_INSERT))
    q.append("DELETE FROM \"%s\".tickets WHERE id <= %d;" % (GOV, BIG_DELETE))
    # T5: deletes of different tables interleaved: three runs
    q.append("BEGIN;")
    q.append("DELETE FROM \"%s\".tickets WHERE id = 100001;" % ACME)
    q.append("DELETE FROM \"%s\".tickets WHERE id = 100002;" % ACME)
    q.append("DELETE FROM \"%s\".tickets WHERE id = 100001;" % BERN)
    q.append("DELETE FROM \"%s\".tickets WHERE id = 100003;" % ACME)
    q.append("COMMIT;")
    # T6..: drafts, truncated
    for s in (BERN, ACME):
        q.append("INSERT INTO \"%s\".drafts SELECT g, 'draft ' || g FROM "
                 "generate_series(1, 5) g;" % s)
    q.append("TRUNCATE \"%s\".drafts;" % BERN)
    q.append("TRUNCATE \"%s\".drafts;" % ACME)
    q.append("SELECT pg_logical_emit_message(false, 'rec', 'outside');")
    # a last small change in every schema, so that a recorder's stream
    # ends with something to wait for
    for s in SCHEMAS:
        q.append("INSERT INTO \"%s\".tickets VALUES (200000, 'last');" % s)
    c.sql("\n".join(q))


def case_fanout(c):
    so = recorder_so()
    outs = {}
    sinks = []
    for name, cfg, schemas, _, _ in RECORDERS:
        outs[name] = os.path.join(c.tmp, "rec-%s.jsonl" % name)
        conf = {"out": outs[name]}
        conf.update(cfg)
        sinks.append(plugin_sink(so, conf, schemas))
    cfg = write_plugin_config(c, "fanout", "fanout", sinks)
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-fanout")
    h.oracle_create(c, "oracle_fanout")
    t0 = time.monotonic()
    fanout_workload(c)
    changes = h.oracle_read(c, "oracle_fanout")
    groups = bulk_groups(changes, BATCH)
    ops = collections.Counter(e["op"] for e in changes)
    h.log("workload: %d changes in WAL %s, %d bulk_delete signals expected"
          % (len(changes), dict(ops), len(groups)))
    check(ops["delete"] == BIG_DELETE + 4 and ops["truncate"] == 2,
          "oracle does not show the workload: %r" % dict(ops))

    want = {}
    for name, _, _, pred, kinds in RECORDERS:
        kinds = ALL_KINDS if kinds == "all" else kinds.split(",")
        want[name] = expected_tuples(changes, groups, pred, kinds)

    def progress():
        short = []
        for name in want:
            n = len(data_records(read_records(outs[name], True)))
            if n < sum(want[name].values()):
                short.append("%s %d/%d" % (name, n, sum(want[name].values())))
        if d.poll() is not None:
            fail("walcastd exited during the workload\n" + d.describe())
        progress.short = short
        return not short
    progress.short = []
    h.wait_until(progress, timeout=90, interval=0.5,
                 what=lambda: "recorders to catch up (%s)"
                 % ", ".join(progress.short))
    h.log("all recorders caught up in %.1fs" % (time.monotonic() - t0))
    time.sleep(0.5)   # anything extra would show up now
    d.stop(signal.SIGTERM)

    problems = []
    recs = {name: read_records(outs[name]) for name in outs}
    for name in want:
        got = got_tuples(recs[name])
        h.log("recorder %-5s %6d data signals %s" % (
            name, sum(got.values()),
            dict(collections.Counter(t[0] for t in got.elements()))))
        if got != want[name]:
            problems.append(describe_diff(name, got, want[name]))
        failed = [r for r in recs[name] if r.get("failed")]
        if failed:
            problems.append("recorder %s has %d failed calls without "
                            "fail_every" % (name, len(failed)))

    # fields of the data signals: namespace/tenant, columns, txn
    by_lsn = {(e["op"], e["lsn"]): e for e in changes}
    for name in want:
        bad = []
        for r in data_records(recs[name]):
            ns, tenant = split_schema(r["schema"])
            if r.get("ns") != ns or r.get("tenant") != tenant:
                bad.append("%s %s: ns/tenant %r/%r, expected %r/%r"
                           % (r["kind"], r["schema"], r.get("ns"),
                              r.get("tenant"), ns, tenant))
            e = by_lsn.get((r["kind"], r["lsn"]))
            if r["kind"] in ("insert", "update") and e:
                wantcols = {col["name"]: col["value"]
                            for col in e["columns"]}
                if r.get("columns") != wantcols:
                    bad.append("%s at %s: columns %r, expected %r"
                               % (r["kind"], r["lsn"], r.get("columns"),
                                  wantcols))
            if e and str(r.get("xid")) != str(e["xid"]):
                bad.append("%s at %s: xid %s, expected %s"
                           % (r["kind"], r["lsn"], r.get("xid"), e["xid"]))
            if e and r.get("end_lsn") != e["end_lsn"]:
                bad.append("%s at %s: end_lsn %s, expected %s"
                           % (r["kind"], r["lsn"], r.get("end_lsn"),
                              e["end_lsn"]))
            if len(bad) > 5:
                break
        if bad:
            problems.append("recorder %s: %s" % (name, "; ".join(bad[:5])))

    # bulk_delete: the 10,000 ids, each once, in 10 signals of 1000
    big = [r for r in recs["bulk"] if r.get("schema") == GOV]
    ids = [int(k[0]) for r in big for k in r["keys"]]
    sizes = [len(r["keys"]) for r in big]
    h.log("bulk recorder: %d signals for %s.tickets, sizes %s, %d keys "
          "(%d distinct)" % (len(big), GOV, sizes, len(ids), len(set(ids))))
    if sizes != [BATCH] * (BIG_DELETE // BATCH):
        problems.append("bulk recorder: %s signal sizes %s, expected 10 x "
                        "1000" % (GOV, sizes))
    if sorted(ids) != list(range(1, BIG_DELETE + 1)):
        problems.append("bulk recorder: keys are not exactly 1..%d once "
                        "each (%d keys, %d distinct, min %s, max %s)"
                        % (BIG_DELETE, len(ids), len(set(ids)),
                           min(ids, default=None), max(ids, default=None)))
    for r in big:
        if int(r.get("nkeys", -1)) != len(r["keys"]):
            problems.append("bulk recorder: nkeys %s but %d keys"
                            % (r.get("nkeys"), len(r["keys"])))
            break
    other = [(r["schema"], [int(k[0]) for k in r["keys"]])
             for r in recs["bulk"] if r.get("schema") != GOV]
    h.log("bulk recorder: other bulk_delete signals %s" % other)
    want_other = [(ACME, [100001, 100002]), (BERN, [100001]),
                  (ACME, [100003])]
    if other != want_other:
        problems.append("bulk recorder: interleaved deletes gave %s, "
                        "expected %s" % (other, want_other))
    # delete: each of the 10,000 once
    dels = collections.Counter(int(r["key"][0]) for r in recs["del"]
                               if r.get("schema") == GOV)
    h.log("delete recorder: %d delete signals for %s.tickets, %d distinct"
          % (sum(dels.values()), GOV, len(dels)))
    if sorted(dels) != list(range(1, BIG_DELETE + 1)) or \
            max(dels.values(), default=0) != 1:
        problems.append("delete recorder: %d signals for %d distinct ids, "
                        "expected each of 1..%d once"
                        % (sum(dels.values()), len(dels), BIG_DELETE))
    # truncates
    for name, want_tr in (("any", [BERN, ACME]), ("town6", [BERN]),
                          ("org", [ACME]), ("glob", [BERN]), ("gov", [])):
        tr = [r["schema"] for r in recs[name] if r["kind"] == "truncate"]
        if tr != want_tr:
            problems.append("recorder %s: truncates of %s, expected %s"
                            % (name, tr, want_tr))

    # messages reach a handler for any sender
    msgs = [(r.get("content"), r.get("transactional")) for r in recs["any"]
            if r["kind"] == "message" and r.get("prefix") == "rec"]
    h.log("any recorder: messages %s; messages seen by the others: %s"
          % (msgs, {n: sum(1 for r in recs[n] if r["kind"] == "message")
                    for n in recs if n != "any"}))
    if sorted(msgs, key=str) != sorted([("in txn", True),
                                        ("outside", False)], key=str):
        problems.append("recorder any: messages %s, expected 'in txn' "
                        "(transactional) and 'outside'" % msgs)

    # begin, commit and message carry no schema: sender and table filters
    # do not apply to them (docs/plugins.md)
    for name in ("gov", "town6", "glob"):
        n = sum(1 for r in recs[name] if r["kind"] == "message")
        if n != 2:
            problems.append("recorder %s (sender filter): %d messages, "
                            "expected both" % (name, n))
    # begin/commit around every transaction's signals
    for name, _, _, _, kinds in RECORDERS:
        if kinds == "all":
            problems += check_txn_framing(name, recs[name])
    # pending commits were acknowledged through host->ack
    pend_commits = [r for r in recs["pend"] if r["kind"] == "commit"]
    acks = [r for r in recs["pend"] if r["kind"] == "ack"]
    h.log("pend recorder: %d commits answered pending, %d acks"
          % (len(pend_commits), len(acks)))
    if not pend_commits or not all(r.get("pending") for r in pend_commits):
        problems.append("pend recorder: commits not answered pending")
    if sorted(int(r["txn_id"]) for r in acks) != \
            sorted(int(r["txn_id"]) for r in pend_commits) or \
            any(int(r["status"]) != 0 for r in acks):
        problems.append("pend recorder: acks %s do not match its pending "
                        "commits %s" % ([(r["txn_id"], r["status"])
                                         for r in acks][:10],
                                        [r["txn_id"]
                                         for r in pend_commits][:10]))

    # everything was acknowledged by every plugin: the slot is confirmed
    # up to the last transaction
    last_end = max(h.lsn_int(e["end_lsn"]) for e in changes
                   if "end_lsn" in e)
    conf = c.slot("fanout")["confirmed_flush_lsn"]
    h.log("fanout slot confirmed_flush_lsn %s, last end_lsn %s"
          % (conf, h.lsn_str(last_end)))
    if conf is None or h.lsn_int(conf) < last_end:
        problems.append("confirmed_flush_lsn %s is before the last "
                        "transaction's end %s after a clean stop"
                        % (conf, h.lsn_str(last_end)))
    drop_slot(c, "oracle_fanout")
    drop_slot(c, "fanout")
    if problems:
        fail("\n  " + "\n  ".join(problems))


def check_txn_framing(name, recs):
    """Each data signal sits between a begin and a commit of its xid."""
    probs = []
    open_xid = None
    for i, r in enumerate(recs):
        k = r["kind"]
        if k == "begin":
            if open_xid is not None:
                probs.append("recorder %s line %d: begin inside xid %s"
                             % (name, i + 1, open_xid))
            open_xid = str(r["xid"])
        elif k == "commit" and open_xid is None and i > 0 and \
                recs[i - 1]["kind"] == "message" and \
                not recs[i - 1].get("transactional"):
            # the commit of its own that follows a message outside a
            # transaction: no begin, xid 0, end_lsn 0
            if str(r["xid"]) != "0" or r.get("end_lsn") != "0/0":
                probs.append("recorder %s line %d: commit after a message "
                             "outside a transaction has xid %s, end_lsn %s"
                             % (name, i + 1, r["xid"], r.get("end_lsn")))
        elif k == "commit":
            if open_xid != str(r["xid"]):
                probs.append("recorder %s line %d: commit of xid %s, open "
                             "is %s" % (name, i + 1, r["xid"], open_xid))
            open_xid = None
        elif k in DATA_KINDS or (k == "message" and r.get("transactional")):
            if open_xid != str(r.get("xid")):
                probs.append("recorder %s line %d: %s of xid %s outside its "
                             "transaction (open: %s)"
                             % (name, i + 1, k, r.get("xid"), open_xid))
        if len(probs) >= 3:
            break
    return probs


# --------------------------------------------------------------------------
# 2. a failing handler: replay, nothing lost, nothing confirmed too early

def fail_txn_sql(t):
    base = 1000000 + t * 100
    ins = ", ".join("(%d, 'i%d')" % (base + i, t)
                    for i in range(FAIL_TXN_INSERTS))
    upd = ", ".join(str(base + i) for i in range(FAIL_TXN_UPDATES))
    return ("BEGIN; INSERT INTO \"%s\".load VALUES %s; "
            "UPDATE \"%s\".load SET v = 'u%d' WHERE id IN (%s); COMMIT;"
            % (BERN, ins, BERN, t, upd))


class Writer(threading.Thread):
    """Writes transactions first..last-1 through one psql session, one every
    FAIL_PACE seconds (pg_sleep between them)."""

    def __init__(self, c, first, last):
        super().__init__(daemon=True)
        self.c, self.first, self.last = c, first, last
        self.error = None

    def run(self):
        script = []
        for t in range(self.first, self.last):
            script.append(fail_txn_sql(t))
            script.append("SELECT pg_sleep(%s);" % FAIL_PACE)
        try:
            self.c.sql("\n".join(script[:-1]))
        except Exception as e:  # reported by the main thread
            self.error = e


def handled(recs):
    """Counter of (kind, lsn) of calls that succeeded."""
    return collections.Counter((r["kind"], r["lsn"])
                               for r in data_records(recs)
                               if not r.get("failed"))


def check_not_confirmed_past(c, slot, changes, recs, label):
    """The slot's confirmed_flush_lsn must not pass a change the plugin has
    not handled: every change of a transaction ending at or before it has
    a successful call."""
    conf = c.slot(slot)["confirmed_flush_lsn"]
    check(conf is not None, "%s: slot has no confirmed_flush_lsn" % label)
    ci = h.lsn_int(conf)
    ok = handled(recs)
    bad = [e for e in changes if h.lsn_int(e["end_lsn"]) <= ci
           and not ok[(e["op"], e["lsn"])]]
    unconfirmed = sum(1 for e in changes if h.lsn_int(e["end_lsn"]) > ci)
    h.log("%s: confirmed_flush_lsn %s; %d changes at or before it, all "
          "handled: %s; %d after it" % (label, conf, len(changes) - unconfirmed,
                                        not bad, unconfirmed))
    check(not bad, "%s: confirmed_flush_lsn %s passes %d changes the plugin "
          "has not handled, e.g. %s" % (label, conf, len(bad),
                                        [(e["op"], e["lsn"], e["end_lsn"])
                                         for e in bad[:3]]))
    return ci


def load_changes(c, oracle):
    return [e for e in h.oracle_read(c, oracle)
            if e.get("schema") == BERN and e.get("table") == "load"]


def replay_lines(d):
    return [l for l in d.stderr().splitlines() if "replaying" in l]


def case_failing(c):
    so = recorder_so()
    out = os.path.join(c.tmp, "rec-failing.jsonl")
    sink = plugin_sink(so, {"out": out, "sender": BERN, "table": "load",
                            "fail_every": FAIL_EVERY})
    # a short status interval: the backoff starts afresh only once the
    # confirmed position has advanced (been sent)
    cfg = write_plugin_config(c, "failing", "failing", [sink],
                              status_interval="200ms")
    h.log("workload: %d transactions of %d changes, one every %.2fs; the "
          "recorder fails every %dth call"
          % (FAIL_TXNS, FAIL_TXN_INSERTS + FAIL_TXN_UPDATES, FAIL_PACE,
             FAIL_EVERY))
    t0 = time.monotonic()
    d1 = h.start_walcastd(cfg, c.tmp, name="walcastd-failing-1")
    h.oracle_create(c, "oracle_failing")

    # run 1: the first half, paced
    half = FAIL_TXNS // 2
    w = Writer(c, 0, half)
    w.start()
    w.join(timeout=120)
    check(not w.is_alive() and w.error is None,
          "writer (first half) failed: %s" % w.error)
    changes = load_changes(c, "oracle_failing")

    def covered():
        if d1.poll() is not None:
            fail("walcastd exited\n" + d1.describe())
        ok = handled(read_records(out, True))
        return all(ok[(e["op"], e["lsn"])] for e in changes)
    h.wait_until(covered, timeout=60, interval=0.3,
                 what="the first half to be handled")
    # one transaction at a time until the plugin fails again, then stop
    # walcastd while it waits to replay
    n_replay = len(replay_lines(d1))
    nxt = half
    while len(replay_lines(d1)) == n_replay:
        check(nxt < half + 10, "no failure after 10 more transactions")
        c.sql(fail_txn_sql(nxt))
        nxt += 1
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and \
                len(replay_lines(d1)) == n_replay:
            time.sleep(0.02)
    check(d1.poll() is None, "walcastd exited\n" + d1.describe())
    d1.stop(signal.SIGTERM)
    err1 = d1.stderr()
    recs = read_records(out)
    changes = load_changes(c, "oracle_failing")
    ci = check_not_confirmed_past(c, "failing", changes, recs,
                                  "stopped while backing off")
    first_end = min(h.lsn_int(e["end_lsn"]) for e in changes)
    check(ci >= first_end, "the slot was never confirmed during run 1 "
          "(confirmed_flush_lsn %s, first transaction ends at %s)"
          % (h.lsn_str(ci), h.lsn_str(first_end)))
    last_failed = [r for r in recs if r.get("failed")][-1]
    h.log("stopped after the failure at %s (%s); %d transactions written"
          % (last_failed["lsn"], last_failed["kind"], nxt))

    # run 2: the rest, paced
    d2 = h.start_walcastd(cfg, c.tmp, name="walcastd-failing-2")
    w = Writer(c, nxt, FAIL_TXNS)
    w.start()
    w.join(timeout=120)
    check(not w.is_alive() and w.error is None,
          "writer (second half) failed: %s" % w.error)
    changes = load_changes(c, "oracle_failing")

    def covered2():
        if d2.poll() is not None:
            fail("walcastd exited\n" + d2.describe())
        ok = handled(read_records(out, True))
        covered2.missing = sum(1 for e in changes
                               if not ok[(e["op"], e["lsn"])])
        return covered2.missing == 0
    covered2.missing = None
    h.wait_until(covered2, timeout=90, interval=0.3,
                 what=lambda: "every change to be handled (%s missing)"
                 % covered2.missing)
    check(d2.poll() is None, "walcastd exited\n" + d2.describe())
    time.sleep(0.5)
    d2.stop(signal.SIGTERM)
    elapsed = time.monotonic() - t0
    err2 = d2.stderr()
    recs = read_records(out)

    # every change handled; count duplicates and failures
    ok = handled(recs)
    failed = [r for r in recs if r.get("failed")]
    dups = sum(n - 1 for n in ok.values() if n > 1)
    missing = [e for e in changes if not ok[(e["op"], e["lsn"])]]
    replays = replay_lines(d1) + replay_lines(d2)
    waits = [int(m.group(1)) for l in replays
             for m in [re.search(r"replaying from \S+ in (\d+) ?ms", l)]
             if m]
    h.log("figures: %d changes written (%d transactions), %d data calls, "
          "%d failed, %d replays scheduled (backoffs %s ms), %d duplicates "
          "handled, %d missing, %.1fs"
          % (len(changes), FAIL_TXNS, len(data_records(recs)), len(failed),
             len(waits), waits, dups, len(missing), elapsed))
    check(not missing, "%d changes never handled, e.g. %s"
          % (len(missing), [(e["op"], e["lsn"]) for e in missing[:5]]))
    check(len(failed) >= 10, "only %d failed calls: the test did not "
          "exercise the replay" % len(failed))
    check(replays, "walcastd did not log that it replays:\n" + err1 + err2)

    # the database agrees: every row's insert, and its last update, handled
    rows = c.sql_rows('SELECT id::text, v FROM "%s".load ORDER BY id' % BERN,
                      2)
    check(len(rows) == FAIL_TXNS * FAIL_TXN_INSERTS,
          "%d rows in the table, expected %d"
          % (len(rows), FAIL_TXNS * FAIL_TXN_INSERTS))
    ins, last_v = set(), {}
    for r in data_records(recs):
        if r.get("failed"):
            continue
        if r["kind"] == "insert":
            ins.add(int(r["key"][0]))
        if r["kind"] in ("insert", "update"):
            last_v[int(r["key"][0])] = r["columns"]["v"]
    not_ins = [int(i) for i, v in rows if int(i) not in ins]
    wrong_v = [(int(i), v, last_v.get(int(i))) for i, v in rows
               if last_v.get(int(i)) != v]
    check(not not_ins, "%d rows whose insert was never handled, e.g. %s"
          % (len(not_ins), not_ins[:5]))
    check(not wrong_v, "%d rows whose last handled value differs from the "
          "table, e.g. (id, table, handled) %s" % (len(wrong_v), wrong_v[:5]))

    # each failure logged once, with plugin, signal, schema.table and LSN
    errs = (err1 + err2).splitlines()
    unlogged, multi = [], []
    for r in failed:
        pat = re.compile(r"(?<![0-9A-Fa-f/])%s(?![0-9A-Fa-f])"
                         % re.escape(r["lsn"]))
        # the table is named as "schema"."table", both quoted
        where = '%s of "%s"."load" at %s' % (r["kind"], BERN, r["lsn"])
        hits = [l for l in errs if pat.search(l) and "recorder" in l
                and where in l]
        if not hits:
            unlogged.append((r["kind"], r["lsn"]))
        elif len(hits) > 1:
            multi.append((r["kind"], r["lsn"], len(hits)))
    h.log("failure log line, e.g.: %s"
          % next((l for l in errs if failed[0]["lsn"] in l), None))
    check(not unlogged, "%d failures not logged with plugin name, signal, "
          "schema.table and LSN, e.g. %s\n--- stderr:\n%s"
          % (len(unlogged), unlogged[:3], "\n".join(errs[-30:])))
    check(not multi, "failures logged more than once: %s" % multi[:3])

    # at a clean stop everything is handled and confirmed, nothing past it
    ci = check_not_confirmed_past(c, "failing", changes, recs,
                                  "after the clean stop")
    last_end = max(h.lsn_int(e["end_lsn"]) for e in changes)
    check(ci >= last_end, "confirmed_flush_lsn %s before the last "
          "transaction's end %s though every change was handled"
          % (h.lsn_str(ci), h.lsn_str(last_end)))
    drop_slot(c, "oracle_failing")
    drop_slot(c, "failing")


# --------------------------------------------------------------------------
# 3. writable plugins are refused

def case_writable(c):
    so = recorder_so()
    base = os.path.join(c.tmp, "plugdirs")
    os.mkdir(base, 0o755)
    os.chmod(base, 0o755)

    def attempt(label, dir_mode, file_mode, names):
        """names: "file" or "dir", what the message must name."""
        pdir = os.path.join(base, label)
        os.mkdir(pdir)
        path = os.path.join(pdir, "recorder.so")
        shutil.copyfile(so, path)
        os.chmod(path, file_mode)
        os.chmod(pdir, dir_mode)
        sink = plugin_sink(path, {"out": os.path.join(pdir, "out.jsonl")})
        cfg = write_plugin_config(c, "writable-" + label, "writable", [sink])
        d = h.start_walcastd(cfg, c.tmp, name="walcastd-" + label,
                             ready=False)
        rc = d.wait(timeout=30)
        err = d.stderr()
        h.log("%s (dir %o, file %o): exit %s: %s"
              % (label, dir_mode, file_mode, rc,
                 (err.strip().splitlines() or [""])[-1]))
        check(rc == h.EX_CONFIG, "%s: walcastd exited %s, expected %d\n%s"
              % (label, rc, h.EX_CONFIG, d.describe()))
        named = path if names == "file" else pdir
        check(named in err, "%s: the message does not name %s:\n%s"
              % (label, named, err))
        check(not os.path.exists(os.path.join(pdir, "out.jsonl")),
              "%s: the plugin was initialised before being refused" % label)

    attempt("group-writable-file", 0o755, 0o775, "file")
    attempt("other-writable-dir", 0o757, 0o755, "dir")
    check(c.slot("writable") is None or c.slot("writable")["active"] ==
          "false", "a refused start left an active slot")
    drop_slot(c, "writable")


# --------------------------------------------------------------------------
# 4. the jsonl plugin and logrotate

def case_jsonl(c):
    so = os.environ.get("WC_JSONL_SO")
    if not so:
        h.log("NOTICE: WC_JSONL_SO is not set (plugins/jsonl not built): "
              "skipping the jsonl test")
        return
    audit = os.path.join(c.tmp, "audit.jsonl")
    sink = plugin_sink(so, {"file": audit, "fsync": "false"}, [ACME])
    cfg = write_plugin_config(c, "jsonl", "jsonl", [sink])
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-jsonl")

    def txn(base):
        c.sql("BEGIN;"
              "INSERT INTO \"%s\".tickets VALUES (%d, 'a'), (%d, 'b');"
              "UPDATE \"%s\".tickets SET title = 'c' WHERE id = %d;"
              "DELETE FROM \"%s\".tickets WHERE id = %d;"
              "INSERT INTO \"%s\".tickets VALUES (%d, 'not mine');"
              "COMMIT;" % (ACME, base, base + 1, ACME, base, ACME, base + 1,
                           GOV, base))
    want = ["begin", "insert", "insert", "update", "delete", "bulk_delete",
            "commit"]

    def without_empty(lines):
        """Drops the begin + commit of transactions that had nothing for
        this plugin: autovacuum's catalog updates, say, come and go at
        any time."""
        out = []
        for l in lines:
            if (l.get("signal") == "commit" and out and
                    out[-1].get("signal") == "begin"):
                out.pop()
                continue
            out.append(l)
        return out

    def lines_of(path, n):
        def enough():
            if d.poll() is not None:
                fail("walcastd exited\n" + d.describe())
            return len(without_empty(h.read_jsonl(
                path, complete_only=True))) >= n
        h.wait_until(enough, timeout=30, what="%d lines in %s" % (n, path))
        time.sleep(0.3)
        return without_empty(h.read_jsonl(path))

    txn(300000)
    got = lines_of(audit, len(want))
    sigs = [l.get("signal") for l in got]
    check(sigs == want, "jsonl: signals %s, expected %s" % (sigs, want))
    check(all(l.get("schema") in (None, ACME) for l in got),
          "jsonl: lines of another schema: %s" % got)

    # logrotate: move the file away, SIGHUP, the next lines go to a new one
    rotated = audit + ".1"
    os.rename(audit, rotated)
    d.send(signal.SIGHUP)
    h.wait_until(lambda: os.path.exists(audit), timeout=10,
                 what="jsonl to reopen %s after SIGHUP" % audit)
    txn(300100)
    got2 = lines_of(audit, len(want))
    sigs2 = [l.get("signal") for l in got2]
    check(sigs2 == want, "jsonl after SIGHUP: signals %s, expected %s"
          % (sigs2, want))
    old = without_empty(h.read_jsonl(rotated))
    check(len(old) == len(want), "jsonl: the rotated file got %d lines "
          "after SIGHUP (has %d, expected %d)" % (len(old) - len(want),
                                                  len(old), len(want)))
    check(d.poll() is None, "walcastd exited\n" + d.describe())
    d.stop(signal.SIGTERM)
    h.log("jsonl: %d lines before rotation, %d after, in the new file"
          % (len(old), len(got2)))
    drop_slot(c, "jsonl")


def test():
    recorder_so()
    c = h.Cluster()
    setup_schemas(c)
    cases = h.Cases()
    cases.run("fan-out by sender, bulk_delete, delete, truncate", case_fanout,
              c)
    cases.run("failing handler: backoff, replay, nothing lost", case_failing,
              c)
    cases.run("writable plugin refused", case_writable, c)
    cases.run("jsonl plugin and SIGHUP", case_jsonl, c)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
