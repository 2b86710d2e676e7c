# SPDX-License-Identifier: MIT
"""Kafka `exactly_once: true` against librdkafka's mock cluster
(tests/tools/kafka_mock), read back with kcat.

- basic: changes arrive, and {prefix}.offsets holds the end position of
  the last PostgreSQL transaction, under the slot's key.
- no_resend: walcastd killed with -9 after Kafka committed a batch but
  before the slot was confirmed (status_interval 10 s) is started again:
  it reads its position back from the offsets topic and sends none of
  the committed transactions again, though the server replays them.
- kill9: kill -9 three times while changes flow: nothing lost, and no
  restarted walcastd sends a transaction at or below the position it
  read back (each record is attributed to the process that made it by
  its envelope's ts_ms); at least one restart must find Kafka ahead of
  the slot.  Duplicates are counted, not failed: the mock cluster keeps
  the records of a Kafka transaction that a kill left open (and that the
  next start aborts) visible to every consumer, read_committed or not,
  so what a real broker hides shows up here (docs/reliability.md).
- fenced: the mock answers EndTxn with PRODUCER_FENCED (the mock does not
  fence a producer itself): walcastd stops with exit 69 and says why.
- broker_down: the only broker goes down for 8 s while changes flow and
  comes back: the commit is retried, nothing is lost.
"""

import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

END_TXN = 26  # the EndTxn request's API key


def eos_yaml(boot, extra=None, props=None):
    y = h.kafka_sink_yaml(boot, props=props)
    keys = "      exactly_once: true\n"
    for k, v in (extra or {}).items():
        keys += "      %s: %s\n" % (k, v)
    return y.replace("  - kafka:\n", "  - kafka:\n" + keys, 1)


def offsets_records(boot, topic="walcast.offsets"):
    """(key, value) of every record in partition 0 of the offsets topic."""
    r = subprocess.run([h.kcat_path(), "-b", boot, "-C", "-t", topic, "-p",
                        "0", "-o", "beginning", "-e", "-q", "-f",
                        "%k\\t%s\\n"], capture_output=True, timeout=60)
    check(r.returncode == 0, "kcat -C %s: %s" % (topic, r.stderr[-500:]))
    out = []
    for line in r.stdout.decode().splitlines():
        if line:
            k, v = line.split("\t", 1)
            out.append((json.loads(k), json.loads(v)))
    return out


def table_values(boot, topic):
    r = subprocess.run([h.kcat_path(), "-b", boot, "-C", "-t", topic, "-o",
                        "beginning", "-e", "-q", "-f", "%s\\n"],
                       capture_output=True, timeout=60)
    check(r.returncode == 0, "kcat -C %s: %s" % (topic, r.stderr[-500:]))
    return [json.loads(x) for x in r.stdout.decode().splitlines()
            if x and x != "NULL"]


def insert_lsn(c):
    # the test cluster may write WAL lazily: where the last record ends
    return h.lsn_int(c.sql_value("SELECT pg_current_wal_insert_lsn()::text"))


def setup_table(c, mock):
    c.sql("CREATE TABLE public.eos (id int PRIMARY KEY, v text)")
    mock.cmd("topic walcast.public.eos 1")
    mock.cmd("topic walcast.offsets 1")


def case_basic():
    c = h.Cluster()
    mock = h.KafkaMock(c.tmp, brokers=1)
    setup_table(c, mock)
    cfg = h.write_config(os.path.join(c.tmp, "basic.yaml"), c.dsn(), "eos",
                         None, filt={"tables": {"include": ["public.eos"]}},
                         extra="sinks:\n" + eos_yaml(mock.bootstrap))
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-eos-basic")
    for i in range(1, 51):
        c.sql("INSERT INTO public.eos VALUES (%d, 'v%d')" % (i, i))
    before = insert_lsn(c)
    c.sql("INSERT INTO public.eos VALUES (51, 'last')")
    after = insert_lsn(c)
    sysid = c.sql_value("SELECT system_identifier FROM pg_control_system()")

    def last_end():
        recs = offsets_records(mock.bootstrap)
        return recs[-1][1]["end_lsn"] if recs else 0
    h.wait_until(lambda: last_end() > before, timeout=60,
                 what="the offsets topic to hold the last transaction")
    d.stop()
    recs = offsets_records(mock.bootstrap)
    key, val = recs[-1]
    check(key == {"system_identifier": str(sysid), "database":
                  c.sql_value("SELECT current_database()"), "slot": "eos"},
          "offsets key %r" % key)
    check(before < val["end_lsn"] <= after,
          "offsets end_lsn %d not the last transaction's (%d, %d]"
          % (val["end_lsn"], before, after))
    check(val["end_lsn_text"] == h.lsn_str(val["end_lsn"]),
          "end_lsn_text %r" % val["end_lsn_text"])
    ids = sorted(v["after"]["id"] for v in
                 table_values(mock.bootstrap, "walcast.public.eos"))
    check(ids == list(range(1, 52)), "data topic holds %r" % ids)
    h.log("offsets topic: %d records, last %r" % (len(recs), val))
    mock.stop()


def case_no_resend():
    c = h.Cluster()
    mock = h.KafkaMock(c.tmp, brokers=1)
    setup_table(c, mock)
    cfg = h.write_config(os.path.join(c.tmp, "nores.yaml"), c.dsn(), "eos",
                         None, status_interval="60s",
                         filt={"tables": {"include": ["public.eos"]}},
                         extra="sinks:\n" + eos_yaml(mock.bootstrap))
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-eos-nores")
    # the slot confirms its start position at once, then not before a
    # minute (status_interval), longer than this case runs on a loaded
    # machine; then 200 transactions
    time.sleep(1.5)
    for i in range(1, 201):
        c.sql("INSERT INTO public.eos VALUES (%d, 'v%d')" % (i, i))
    last = insert_lsn(c)

    def committed():
        recs = offsets_records(mock.bootstrap)
        return recs and recs[-1][1]["end_lsn"] >= last - 200
    h.wait_until(lambda: len(table_values(mock.bootstrap,
                                          "walcast.public.eos")) >= 200,
                 timeout=60, what="200 messages")
    h.wait_until(committed, timeout=30, what="the last batch committed")
    conf = h.lsn_int(c.slot("eos")["confirmed_flush_lsn"])
    d.kill()
    check(conf < last - 200, "the slot was confirmed (%s) before the kill: "
          "nothing to replay, the test shows nothing" % h.lsn_str(conf))
    h.chaos_wait_slot_free(c, "eos")
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-eos-nores-2")
    check("exactly once: Kafka holds everything up to end_lsn" in d.stderr(),
          "no position read back\n" + d.describe())
    c.sql("INSERT INTO public.eos VALUES (1000, 'after')")
    h.wait_until(lambda: len(table_values(mock.bootstrap,
                                          "walcast.public.eos")) >= 201,
                 timeout=60, what="the change after the restart")
    time.sleep(1)
    d.stop()
    ids = [v["after"]["id"] for v in
           table_values(mock.bootstrap, "walcast.public.eos")]
    check(sorted(ids) == list(range(1, 201)) + [1000],
          "%d messages, %d distinct: the replayed transactions were sent "
          "again" % (len(ids), len(set(ids))))
    mock.stop()


def kafka_records(boot, topics, prefix="walcast"):
    """(change id, commit_lsn, ts_ms) of every record in topics: which
    transaction a record belongs to, and when walcastd made it."""
    ops = {"c": "I", "u": "U", "d": "D"}
    out = []
    for t in topics:
        r = subprocess.run([h.kcat_path(), "-b", boot, "-C", "-t", t, "-o",
                            "beginning", "-e", "-q", "-f", "%h\t%s\n"],
                           capture_output=True, timeout=180)
        check(r.returncode == 0, "kcat -C %s: %s" % (t, r.stderr[-500:]))
        schema, table = t[len(prefix) + 1:].rsplit(".", 1)
        for line in r.stdout.decode().splitlines():
            hdrs, _, val = line.partition("\t")
            if not val or val == "NULL":
                continue
            v = json.loads(val)
            hd = dict(kv.split("=", 1) for kv in hdrs.split(","))
            op = ops[v["op"]]
            row = v["before"] if op == "D" else v["after"]
            out.append((h.chaos_change_id(schema, table, op, row),
                        int(hd["walcast.commit_lsn"]), v["ts_ms"]))
    return out


def case_kill9():
    """kill -9 three times while changes flow, each walcastd started
    again as systemd would.  Each record is attributed to the process
    that made it (its envelope's ts_ms against the kill times): a
    restarted walcastd must send no transaction at or below the position
    it read back, though the slot was confirmed further back; what is
    sent twice can only be what a killed process left in its open Kafka
    transaction (aborted on a real broker, visible in the mock)."""
    h.kcat_path()
    rng = h.chaos_seed()
    c = h.Cluster()
    w = h.ChaosWorkload(c, rng)
    w.setup()
    mock = h.KafkaMock(c.tmp, brokers=1)
    topics = w.kafka_topics(mock, 2)
    mock.cmd("topic walcast.offsets 1")
    cfg = h.write_config(os.path.join(c.tmp, "k9.yaml"), c.dsn(), "eosk9",
                         None,
                         filt={"schemas": {"include": [h.CHAOS_SCHEMA_GLOB]}},
                         extra="sinks:\n" + eos_yaml(mock.bootstrap))
    t0 = time.monotonic()
    d = h.chaos_start_walcastd(cfg, c.tmp, "walcastd-eos-k9")
    w.start(30000, seconds=15)
    kills, procs, skipped = [], [d], 0
    def kafka_ahead():
        """Kafka's last committed position is past the slot's: the state a
        kill must find for the position read back to matter (the slot is
        confirmed every 10 s, Kafka's batches far more often, so this
        holds most of the time while changes flow)."""
        recs = offsets_records(mock.bootstrap)
        conf = h.lsn_int(c.slot("eosk9")["confirmed_flush_lsn"])
        return recs and recs[-1][1]["end_lsn"] > conf

    for k in range(3):
        base = len(offsets_records(mock.bootstrap))
        h.wait_until(lambda: len(offsets_records(mock.bootstrap)) > base + 2
                     or not w.running(), timeout=120,
                     what="walcastd to commit to Kafka")
        time.sleep(rng.uniform(0.0, 1.0))
        # the first kill at least where Kafka is ahead of the slot (a
        # loaded machine can make a random moment miss it: the writer
        # slow to start, or a status message just sent)
        if k == 0:
            h.wait_until(lambda: kafka_ahead() or not w.running(),
                         timeout=60,
                         what="Kafka's position to pass the slot's")
        check(d.poll() is None, "%s exited\n%s" % (d.name, d.describe()))
        conf = h.lsn_int(c.slot("eosk9")["confirmed_flush_lsn"])
        d.kill()
        kills.append(time.time() * 1000)
        h.chaos_wait_slot_free(c, "eosk9")
        d = h.chaos_start_walcastd(cfg, c.tmp, "walcastd-eos-k9-%d" % (k + 2))
        procs.append(d)
        m = re.search(r"Kafka holds everything up to end_lsn (\d+)",
                      d.stderr())
        check(m, "no position read back\n" + d.describe())
        pos = int(m.group(1))
        h.log("kill -9 #%d: slot confirmed %s, Kafka position read back %s"
              % (k + 1, h.lsn_str(conf), h.lsn_str(pos)))
        skipped += 1 if pos > conf else 0
        d.position = pos
    w.wait()
    target = c.wait_flushed()
    h.chaos_wait_confirmed(c, "eosk9", target, [d], timeout=300)
    d.stop()
    recs = kafka_records(mock.bootstrap, topics)
    resent = []
    for cid, commit_lsn, ts in recs:
        k = sum(1 for t in kills if ts > t)   # the process that made it
        if k > 0 and commit_lsn < procs[k].position:
            resent.append((cid, h.lsn_str(commit_lsn),
                           h.lsn_str(procs[k].position)))
    h.log("%d of 3 restarts found Kafka ahead of the slot" % skipped)
    check(skipped >= 1, "no restart found Kafka ahead of the slot: the "
          "position read back was never put to the test")
    check(not resent, "%d records of transactions Kafka had committed were "
          "sent again by the next walcastd, e.g. %s"
          % (len(resent), resent[:3]))
    h.chaos_result("kill9-kafka-exactly-once", "3x kill -9", w.expected(),
                   [r[0] for r in recs], time.monotonic() - t0,
                   {"resent_below_position": len(resent),
                    "note": "duplicates: open Kafka transactions of killed "
                    "processes, which the mock does not hide"})
    mock.stop()


def case_fenced():
    c = h.Cluster()
    mock = h.KafkaMock(c.tmp, brokers=1)
    setup_table(c, mock)
    cfg = h.write_config(os.path.join(c.tmp, "fenced.yaml"), c.dsn(), "eos",
                         None, filt={"tables": {"include": ["public.eos"]}},
                         extra="sinks:\n" + eos_yaml(mock.bootstrap))
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-eos-fenced")
    c.sql("INSERT INTO public.eos VALUES (1, 'a')")
    h.wait_until(lambda: offsets_records(mock.bootstrap), timeout=60,
                 what="a first commit")
    mock.cmd("error %d 1 PRODUCER_FENCED" % END_TXN)
    c.sql("INSERT INTO public.eos VALUES (2, 'b')")
    rc = d.wait(timeout=60)
    err = d.stderr()
    check(rc == 69, "exit %s, not 69\n%s" % (rc, d.describe()))
    check("another walcastd with the same transactional id is running: "
          "this one is not the active one" in err,
          "no clear message\n" + d.describe())
    check(err.count("fenced") >= 1 and "replaying" not in err,
          "retried after the fencing\n" + d.describe())
    mock.stop()


def case_broker_down():
    c = h.Cluster()
    rng = h.chaos_seed()
    w = h.ChaosWorkload(c, rng, min_rows=4, max_rows=30, big_every=0)
    w.setup()
    mock = h.KafkaMock(c.tmp, brokers=1)
    topics = w.kafka_topics(mock, 1)
    mock.cmd("topic walcast.offsets 1")
    cfg = h.write_config(os.path.join(c.tmp, "down.yaml"), c.dsn(), "eosdown",
                         None,
                         filt={"schemas": {"include": [h.CHAOS_SCHEMA_GLOB]}},
                         extra="sinks:\n" + eos_yaml(mock.bootstrap))
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-eos-down")
    t0 = time.monotonic()
    w.start(6000, seconds=10)
    time.sleep(3)
    mock.cmd("down 1")
    time.sleep(8)
    mock.cmd("up 1")
    w.wait()
    target = c.wait_flushed()
    h.chaos_wait_confirmed(c, "eosdown", target, [d], timeout=240)
    d.stop()
    err = d.stderr()
    check("brokers are down" in err, "the outage went unnoticed: the test "
          "shows nothing\n" + d.describe())
    aborted = err.count("could not commit the Kafka transaction")
    # with no Kafka transaction aborted, the mock's lack of isolation does
    # not matter: a retried commit must not repeat anything
    h.chaos_result("kafka-exactly-once-broker-down", "broker down 8 s",
                   w.expected(), h.kafka_change_ids(mock.bootstrap, topics),
                   time.monotonic() - t0, {"aborted": aborted},
                   exactly_once=aborted == 0)
    mock.stop()


def replays_run(failing_first):
    """A Kafka exactly-once sink beside a recorder plugin that fails one
    commit in 25, so walcastd replays from the confirmed position again
    and again.  Returns (chaos result, stderr of walcastd)."""
    c = h.Cluster()
    rng = h.chaos_seed()
    w = h.ChaosWorkload(c, rng, min_rows=4, max_rows=30, big_every=0)
    w.setup()
    mock = h.KafkaMock(c.tmp, brokers=1)
    topics = w.kafka_topics(mock, 1)
    mock.cmd("topic walcast.offsets 1")
    failing = h.recorder_sink_yaml({"out": os.path.join(c.tmp, "f.jsonl"),
                                    "pending": "true",
                                    "fail_commit_every": 25})
    kafka = eos_yaml(mock.bootstrap)
    sinks = failing + kafka if failing_first else kafka + failing
    cfg = h.write_config(os.path.join(c.tmp, "rep.yaml"), c.dsn(), "eosrep",
                         None, status_interval="250ms",
                         filt={"schemas": {"include": [h.CHAOS_SCHEMA_GLOB]}},
                         extra="sinks:\n" + sinks)
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-eos-rep")
    t0 = time.monotonic()
    w.start(4000, seconds=8)
    w.wait()
    target = c.wait_flushed()
    h.chaos_wait_confirmed(c, "eosrep", target, [d], timeout=240)
    d.stop()
    err = d.stderr()
    replays = err.count(">replaying from ")
    check(replays >= 3, "only %d replays: the test failed too little"
          % replays)
    aborts = err.count("aborting the open Kafka transaction")
    res = h.chaos_result(
        "kafka-exactly-once-replays" + ("-cut" if failing_first else ""),
        "replays", w.expected(), h.kafka_change_ids(mock.bootstrap, topics),
        time.monotonic() - t0, {"replays": replays, "kafka_aborts": aborts},
        exactly_once=not failing_first)
    mock.stop()
    return res, err


def case_replays():
    """The failing sink after the Kafka one: each replayed transaction is
    whole in Kafka's open (or committing) transaction already; the sink
    must not send it again, and acknowledges it with that transaction.
    No Kafka transaction is aborted, so the mock shows what a
    read_committed consumer would: duplicates fail the case."""
    res, err = replays_run(False)
    check("aborting the open Kafka transaction" not in err,
          "a Kafka transaction was aborted: the case shows nothing exact")


def case_replays_cut():
    """The failing sink first: the replay cuts a transaction short in the
    Kafka sink, some of whose messages are in Kafka's open transaction;
    that one is aborted and everything comes again in the next.  Nothing
    is lost; what the aborted transactions held is visible in the mock
    (counted as duplicates, hidden from read_committed consumers by a
    real broker)."""
    res, err = replays_run(True)
    check("aborting the open Kafka transaction" in err,
          "no Kafka transaction was cut short: the case shows nothing")


def case_kafka_absent_at_start():
    """exactly_once reads its position from Kafka at start: with no broker
    answering, walcastd says so and exits 1, which systemd's Restart= tries
    again, as when PostgreSQL does not answer; not 78 (a configuration
    matter: RestartPreventExitStatus), which left it stopped for good."""
    c = h.Cluster()
    c.sql("CREATE TABLE public.eos (id int PRIMARY KEY, v text)")
    port = h.free_port()  # nothing listens there
    cfg = h.write_config(os.path.join(c.tmp, "absent.yaml"), c.dsn(),
                         "eosabsent", None,
                         filt={"tables": {"include": ["public.eos"]}},
                         extra="sinks:\n" + eos_yaml("127.0.0.1:%d" % port))
    t0 = time.monotonic()
    r = h.run([h.binary("walcastd"), "-c", cfg], timeout=120)
    check(r.returncode == 1,
          "walcastd exited %d with no broker, expected 1:\n%s"
          % (r.returncode, r.stderr[-2000:]))
    check("could not start the transactional producer" in r.stderr and
          "is Kafka reachable?" in r.stderr and "absent.yaml:" in r.stderr,
          "the message does not say what failed:\n" + r.stderr[-2000:])
    h.log("exit 1 after %.1f s: %s" % (
        time.monotonic() - t0,
        [x for x in r.stderr.splitlines() if "reachable" in x][0][-160:]))


def test():
    cases = h.Cases()
    for name, fn in [("basic", case_basic), ("no_resend", case_no_resend),
                     ("fenced", case_fenced), ("broker_down", case_broker_down),
                     ("replays", case_replays),
                     ("replays_cut", case_replays_cut),
                     ("kill9", case_kill9),
                     ("kafka_absent_at_start", case_kafka_absent_at_start)]:
        cases.run(name, fn)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
