# SPDX-License-Identifier: MIT
"""The Kafka sink for Debezium's consumers (issue 20):
PostgreSQL -> walcastd -> the kafka_mock process -> kcat.

1. value_format: debezium with schemas_enable: a row of every type the
   decoder's tests cover is converted as Debezium's PostgreSQL connector
   documents it ("Data type mappings": the expected payload below is
   written from that table), each key and value is JsonConverter's
   {"schema", "payload"} with the struct names Debezium writes, every
   payload conforms to its schema, and a consumer decoding the logical
   types (Decimal, VariableScaleDecimal, Date, MicroTimestamp, ...) gets
   PostgreSQL's values back.  Updates, deletes and their tombstones keep
   the shapes.
2. decimal_handling: string, time_precision: connect, no schemas: the
   payload alone, with those mappings.
3. transactions_topic: a BEGIN and an END record per transaction (END
   with the counts per table), keyed by the transaction id, and the
   transaction block in every envelope, in both value formats.
4. messages_topic and heartbeat_topic: pg_logical_emit_message() content
   as Debezium's op "m" records (in and outside a transaction), and
   walcast's heartbeats (heartbeat.deliver: true) as Debezium's.
5. column rules: excluded columns are in no row, masked ones carry the
   salted SHA-256 a consumer can compute, key_columns key a table without
   a primary key; a rule excluding a primary-key column of a table
   created after start stops the stream at that table, said once,
   confirming nothing past it.
5b. column rules against the catalog at start: key_columns naming a
   missing column, excluding a primary-key column or a key_columns one
   make walcastd and walcastd --check exit 78 naming sink, table and
   column; tables the sink does not take are not checked; a rule for no
   table is a warning; an unreachable database is a notice for --check.
5c. enums: io.debezium.data.Enum with the labels, in a quoted tenant
   schema; a type created after start gets its labels at its first
   change, a value added after start (to either) the new labels at the
   first change with it, also after a server restart; a type dropped
   before its change is read goes out as walcast.data.Text, said once.
6. outbox: inserts into "*.outbox" tables (per tenant schema) go to the
   topic their aggregatetype and schema make, keyed by the aggregate id,
   valued with the payload document, with the id and the type as
   headers; the deletes that empty the outbox and its updates are not
   published; the sink's other tables are as before.
7. topic_creation: librdkafka's mock cluster has no CreateTopics (2.0.2,
   src/rdkafka_mock_handlers.c), so against it only the failure can be
   seen: it names the topic, says what to do, nothing past the change is
   confirmed, and the change is tried again.
7b. topic_creation's success path, through kafka_admin_proxy.py, which
   answers CreateTopics in front of the mock: the request for each topic
   (template-made and tenant names, the transactions topic; partitions,
   replication factor, config entries, timeout), one per name even for
   two tables with one topic, "already exists" used as it is, asked again
   after a restart, and the messages in the topics made.

Needs WC_KAFKA_MOCK and kcat.
"""

import base64
import datetime
import decimal
import hashlib
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, fail  # noqa: E402
import test_kafka as tk  # noqa: E402
import kafka_admin_proxy  # noqa: E402

DDL = """
CREATE TYPE public.mood AS ENUM ('sad', 'happy');
CREATE DOMAIN public.positive AS integer CHECK (VALUE > 0);
CREATE TABLE t_all (
  id integer PRIMARY KEY, i2 smallint, i8 bigint, num numeric,
  num_p numeric(12,4), f4 real, f8 double precision, b boolean, t text,
  vc varchar(20), ch char(5), ba bytea, ia integer[], ta text[], js json,
  jb jsonb, ts timestamp, ts3 timestamp(3), tstz timestamptz, d date,
  tm time, tm3 time(3), ttz timetz, iv interval, u uuid, ip inet,
  m money, o oid, bt bit(5), b1 bit(1), vb varbit, x xml,
  mood public.mood, pos public.positive);
CREATE TABLE t_other (id bigint PRIMARY KEY, v text);
"""

ROW = """INSERT INTO t_all VALUES (1, -32768, -9223372036854775808,
  12345678901234567890.123456789, 3.1416, 1.5, -2.5e-300, true, 'plain',
  'varchar', 'ab', '\\xdeadbeef00', '{1,2,NULL,4}', '{"a b","c\\"d",NULL}',
  '{"k": [1]}', '{"a": true}', '2026-01-02 03:04:05.678901',
  '2026-01-02 03:04:05.678', '2026-01-02 01:04:05.678901+00',
  '2026-12-31', '23:59:59.999999', '00:00:01.5', '10:15:30.25+02',
  '1 year 2 mons 3 days 04:05:06', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '192.168.0.1/24', 12.34, 4294967295, B'10110', B'1',
  B'0000000100000001', '<a/>', 'happy', 5);"""

# Debezium's documented mapping, default settings (time.precision.mode
# adaptive, decimal.handling.mode precise, binary.handling.mode bytes,
# interval.handling.mode numeric); the base64 is the bytes the table
# names, worked out by hand (3.1416 at scale 4 is 31416 = 0x7AB8).
WANT_AFTER = {
    "id": 1,
    "i2": -32768,
    "i8": -9223372036854775808,
    # NUMERIC without scale: VariableScaleDecimal {scale, value}
    "num": {"scale": 9, "value": "J+QbMka+ybFuOYEV"},
    "num_p": "erg=",
    "f4": 1.5,
    "f8": -2.5e-300,
    "b": True,
    "t": "plain",
    "vc": "varchar",
    "ch": "ab   ",
    "ba": "3q2+7wA=",
    "ia": [1, 2, None, 4],
    "ta": ["a b", 'c"d', None],
    "js": '{"k": [1]}',
    "jb": '{"a": true}',
    # TIMESTAMP(6): MicroTimestamp, TIMESTAMP(3): Timestamp (ms)
    "ts": 1767323045678901,
    "ts3": 1767323045678,
    "tstz": "2026-01-02T01:04:05.678901Z",
    "d": 20818,
    "tm": 86399999999,
    "tm3": 1500,
    "ttz": "08:15:30.25Z",
    # (14 * 365.25 / 12 + 3) days + 04:05:06, in microseconds
    "iv": 37091106000000,
    "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    "ip": "192.168.0.1/24",
    "m": "BNI=",
    "o": 4294967295,
    "bt": "Fg==",
    "b1": True,
    "vb": "AQE=",
    "x": "<a/>",
    # an enum: its label (io.debezium.data.Enum)
    "mood": "happy",
    # what walcast does not convert: the text (walcast.data.Text)
    "pos": "5",
}

# the schema of some fields, as Debezium names them
WANT_FIELDS = {
    "id": {"type": "int32", "optional": False, "field": "id"},
    "num_p": {"type": "bytes", "optional": True,
              "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
              "parameters": {"scale": "4",
                             "connect.decimal.precision": "12"},
              "field": "num_p"},
    "tstz": {"type": "string", "optional": True,
             "name": "io.debezium.time.ZonedTimestamp", "version": 1,
             "field": "tstz"},
    "iv": {"type": "int64", "optional": True,
           "name": "io.debezium.time.MicroDuration", "version": 1,
           "field": "iv"},
    "ia": {"type": "array", "items": {"type": "int32", "optional": True},
           "optional": True, "field": "ia"},
    "js": {"type": "string", "optional": True,
           "name": "io.debezium.data.Json", "version": 1, "field": "js"},
    # an enum: its labels from the catalog at start, in order
    "mood": {"type": "string", "optional": True,
             "name": "io.debezium.data.Enum", "version": 1,
             "parameters": {"allowed": "sad,happy"}, "field": "mood"},
}


def dbz_sink(boot, extra):
    return h.kafka_sink_yaml(boot) + "".join(
        "      %s: %s\n" % kv for kv in extra)


def run_walcastd(c, name, slot, sinks, extra=""):
    cfg = h.write_config(os.path.join(c.tmp, name + ".yaml"), c.dsn(), slot,
                         None, extra="sinks:\n" + sinks + extra)
    return h.start_walcastd(cfg, c.tmp, name="walcastd-" + name)


def raw_records(boot, topic):
    argv = [h.kcat_path(), "-b", boot, "-C", "-t", topic, "-o", "beginning",
            "-e", "-J", "-q"]
    r = h.run(argv, timeout=60)
    check(r.returncode == 0, "kcat: %s" % r.stderr)
    out = []
    for line in r.stdout.splitlines():
        j = json.loads(line)
        k, v = j.get("key"), j.get("payload")
        out.append((None if k is None else json.loads(k),
                    None if v is None else json.loads(v)))
    return out


# --------------------------------------------------------------------------
# a consumer written from the documentation: JsonConverter's schema and
# the logical types


PRIMS = {"int8": int, "int16": int, "int32": int, "int64": int,
         "float": (float, int, str), "double": (float, int, str),
         "boolean": bool, "string": str, "bytes": str}


def conforms(schema, value, where):
    """value is what schema says (JsonConverter's reading)."""
    if value is None:
        check(schema.get("optional"), "%s: null in a required field" % where)
        return
    t = schema["type"]
    if t == "struct":
        check(isinstance(value, dict), "%s: not an object" % where)
        names = [f["field"] for f in schema["fields"]]
        check(set(value) <= set(names),
              "%s: fields %s not in the schema" % (where,
                                                   set(value) - set(names)))
        for f in schema["fields"]:
            conforms(f, value.get(f["field"]), where + "." + f["field"])
    elif t == "array":
        check(isinstance(value, list), "%s: not an array" % where)
        for i, v in enumerate(value):
            conforms(schema["items"], v, "%s[%d]" % (where, i))
    else:
        check(isinstance(value, PRIMS[t]) and not (
            t.startswith("int") and isinstance(value, bool)),
            "%s: %r is not a %s" % (where, value, t))
        if t == "bytes":
            base64.b64decode(value, validate=True)


def unscaled(b64):
    return int.from_bytes(base64.b64decode(b64), "big", signed=True)


EXACT = decimal.Context(prec=1000)


def decode(schema, v):
    """A logical type's value as a consumer gets it."""
    name = schema.get("name")
    if v is None:
        return None
    if name == "org.apache.kafka.connect.data.Decimal":
        return decimal.Decimal(unscaled(v)).scaleb(
            -int(schema["parameters"]["scale"]), EXACT)
    if name == "io.debezium.data.VariableScaleDecimal":
        return decimal.Decimal(unscaled(v["value"])).scaleb(-v["scale"],
                                                            EXACT)
    if name == "io.debezium.time.Date":
        return datetime.date(1970, 1, 1) + datetime.timedelta(days=v)
    if name == "io.debezium.time.MicroTimestamp":
        return datetime.datetime(1970, 1, 1) + datetime.timedelta(
            microseconds=v)
    if name == "io.debezium.time.MicroTime":
        return (datetime.datetime(1970, 1, 1) +
                datetime.timedelta(microseconds=v)).time()
    if name == "io.debezium.time.ZonedTimestamp":
        return datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    return v


def case_types(c):
    mock = h.KafkaMock(c.tmp, brokers=1)
    topic = "walcast.public.t_all"
    mock.cmd("topic %s 1" % topic)
    d = run_walcastd(c, "dbz-types", "dbz_types", dbz_sink(
        mock.bootstrap, [("value_format", "debezium"),
                         ("schemas_enable", "true")]))
    c.sql(ROW)
    c.sql("UPDATE t_all SET t = 'changed', num = -0.5 WHERE id = 1;"
          "DELETE FROM t_all WHERE id = 1;")
    tk.wait_confirmed(c, "dbz_types", d)
    recs = raw_records(mock.bootstrap, topic)
    got_ops = [v["payload"]["op"] if v else None for _, v in recs]
    check(got_ops == ["c", "u", "d", None],
          "ops: %r, want c, u, d and a tombstone" % got_ops)

    key, value = recs[0]
    check(key == {"schema": {"type": "struct", "fields": [
        {"type": "int32", "optional": False, "field": "id"}],
        "optional": False, "name": "walcast.public.t_all.Key"},
        "payload": {"id": 1}}, "key: %r" % key)
    env, pay = value["schema"], value["payload"]
    check(env["name"] == "walcast.public.t_all.Envelope" and
          env["version"] == 2, "envelope schema: %r" % {
              k: env.get(k) for k in ("name", "version")})
    fields = {f["field"]: f for f in env["fields"]}
    check([f["field"] for f in env["fields"]] ==
          ["before", "after", "source", "op", "ts_ms", "ts_us", "ts_ns",
           "transaction"], "envelope fields: %r" % list(fields))
    check(fields["after"]["name"] == "walcast.public.t_all.Value",
          "value struct: %r" % fields["after"].get("name"))
    check(fields["source"]["name"] ==
          "io.debezium.connector.postgresql.Source", "source struct")
    conforms(env, pay, "value")
    conforms(key["schema"], key["payload"], "key")

    after = pay["after"]
    problems = []
    for col, want in WANT_AFTER.items():
        if after.get(col) != want:
            problems.append("%s: got %r, want %r" % (col, after.get(col),
                                                     want))
    check(set(after) == set(WANT_AFTER),
          "columns: %r" % sorted(set(after) ^ set(WANT_AFTER)))
    vfields = {f["field"]: f for f in fields["after"]["fields"]}
    for col, want in WANT_FIELDS.items():
        if vfields.get(col) != want:
            problems.append("schema of %s: got %r, want %r"
                            % (col, vfields.get(col), want))
    if problems:
        fail("\n".join(problems))

    # what a consumer decodes is PostgreSQL's value
    decoded = {col: decode(vfields[col], after[col]) for col in after}
    want = {
        "num": decimal.Decimal("12345678901234567890.123456789"),
        "num_p": decimal.Decimal("3.1416"),
        "m": None,  # money: Decimal of scale 2, below
        "d": datetime.date(2026, 12, 31),
        "ts": datetime.datetime(2026, 1, 2, 3, 4, 5, 678901),
        "tm": datetime.time(23, 59, 59, 999999),
        "tstz": datetime.datetime(2026, 1, 2, 1, 4, 5, 678901,
                                  tzinfo=datetime.timezone.utc),
    }
    for col, w in want.items():
        if col == "m":
            check(decoded["m"] == decimal.Decimal("12.34"),
                  "money decodes to %r" % decoded["m"])
            continue
        check(decoded[col] == w, "%s decodes to %r, PostgreSQL has %r"
              % (col, decoded[col], w))

    src = pay["source"]
    check(src["connector"] == "postgresql" and src["name"] == "walcast" and
          src["schema"] == "public" and src["table"] == "t_all" and
          src["snapshot"] == "false" and isinstance(src["lsn"], int) and
          isinstance(src["txId"], int) and src["db"] == "postgres",
          "source: %r" % src)

    # the update: before is the key (REPLICA IDENTITY DEFAULT)
    _, uval = recs[1]
    check(uval["payload"]["before"] == {"id": 1} and
          uval["payload"]["after"]["t"] == "changed" and
          uval["payload"]["after"]["num"] == {"scale": 1, "value": "+w=="},
          "update: %r" % {k: uval["payload"][k] for k in ("before",)})
    conforms(uval["schema"], uval["payload"], "update")
    dkey, dval = recs[2]
    check(dkey["payload"] == {"id": 1} and
          dval["payload"]["before"] == {"id": 1} and
          dval["payload"]["after"] is None, "delete: %r" % dval["payload"])
    conforms(dval["schema"], dval["payload"], "delete")
    # the Value struct is the table's, whatever the change
    check(dval["schema"]["fields"][0]["fields"] ==
          fields["after"]["fields"], "a delete's Value struct is the table's")
    check(recs[3][0] == dkey and recs[3][1] is None, "tombstone")
    d.stop()
    tk.drop_slot(c, "dbz_types")
    mock.stop()


def case_options(c):
    mock = h.KafkaMock(c.tmp, brokers=1)
    topic = "app.public.t_all"
    mock.cmd("topic %s 1" % topic)
    d = run_walcastd(c, "dbz-options", "dbz_options", dbz_sink(
        mock.bootstrap, [("prefix", "app"), ("value_format", "debezium"),
                         ("decimal_handling", "string"),
                         ("time_precision", "connect")]))
    c.sql(ROW.replace("(1,", "(2,", 1))
    tk.wait_confirmed(c, "dbz_options", d)
    recs = raw_records(mock.bootstrap, topic)
    check(len(recs) == 1, "%d records" % len(recs))
    key, value = recs[0]
    # no schemas: the payload alone
    check(key == {"id": 2}, "key: %r" % key)
    check("schema" not in value and value["op"] == "c", "value: %r"
          % list(value))
    a = value["after"]
    want = {
        # decimal.handling.mode string
        "num": "12345678901234567890.123456789", "num_p": "3.1416",
        "m": "12.34",
        # time.precision.mode connect: milliseconds, days
        "ts": 1767323045678, "ts3": 1767323045678, "tm": 86399999,
        "tm3": 1500, "d": 20818,
        # not changed by either
        "tstz": "2026-01-02T01:04:05.678901Z", "iv": 37091106000000,
    }
    bad = {k: (a.get(k), w) for k, w in want.items() if a.get(k) != w}
    check(not bad, "got, want: %r" % bad)
    check(value["source"]["name"] == "app", "source.name is the prefix")
    d.stop()
    tk.drop_slot(c, "dbz_options")
    mock.stop()


def case_transactions(c):
    mock = h.KafkaMock(c.tmp, brokers=1)
    for t in ("wc.public.t_other", "wc.public.t_all", "wc.transaction",
              "dbz.public.t_other", "dbz.public.t_all", "dbz.transaction"):
        mock.cmd("topic %s 1" % t)
    sinks = (dbz_sink(mock.bootstrap, [("prefix", "wc"),
                                       ("transactions_topic",
                                        "wc.transaction")]) +
             dbz_sink(mock.bootstrap, [("prefix", "dbz"),
                                       ("value_format", "debezium"),
                                       ("schemas_enable", "true"),
                                       ("transactions_topic",
                                        "dbz.transaction")]))
    d = run_walcastd(c, "dbz-txn", "dbz_txn", sinks)
    c.sql("BEGIN;"
          "INSERT INTO t_other VALUES (1, 'a'), (2, 'b');"
          "INSERT INTO t_all (id) VALUES (10);"
          "UPDATE t_other SET v = 'c' WHERE id = 1;"
          "COMMIT;"
          "INSERT INTO t_other VALUES (3, 'd');")
    xid1, xid2 = None, None
    tk.wait_confirmed(c, "dbz_txn", d)
    for prefix in ("wc", "dbz"):
        txrecs = raw_records(mock.bootstrap, prefix + ".transaction")
        if prefix == "dbz":
            for k, v in txrecs:
                check(k["schema"]["name"] == "io.debezium.connector.common."
                      "TransactionMetadataKey" and
                      v["schema"]["name"] == "io.debezium.connector.common."
                      "TransactionMetadataValue", "transaction schemas")
                conforms(v["schema"], v["payload"], "transaction record")
            txrecs = [(k["payload"], v["payload"]) for k, v in txrecs]
        got = [(v["status"], v["event_count"],
                sorted((x["data_collection"], x["event_count"])
                       for x in v["data_collections"] or []))
               for _, v in txrecs]
        check(got == [("BEGIN", None, []),
                      ("END", 4, [("public.t_all", 1), ("public.t_other", 3)]),
                      ("BEGIN", None, []),
                      ("END", 1, [("public.t_other", 1)])],
              "%s.transaction: %r" % (prefix, got))
        ids = [v["id"] for _, v in txrecs]
        check(all(k == {"id": v["id"]} for k, v in txrecs),
              "keyed by the transaction id")
        check(ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2],
              "ids: %r" % ids)
        xid1, xid2 = ids[0], ids[2]
        check(all(isinstance(v["ts_ms"], int) for _, v in txrecs), "ts_ms")
        # the blocks in the envelopes
        other = raw_records(mock.bootstrap, prefix + ".public.t_other")
        alls = raw_records(mock.bootstrap, prefix + ".public.t_all")
        if prefix == "dbz":
            other = [(k, v["payload"]) for k, v in other]
            alls = [(k, v["payload"]) for k, v in alls]
        blocks = [v["transaction"] for _, v in other]
        check(blocks == [
            {"id": xid1, "total_order": 1, "data_collection_order": 1},
            {"id": xid1, "total_order": 2, "data_collection_order": 2},
            {"id": xid1, "total_order": 4, "data_collection_order": 3},
            {"id": xid2, "total_order": 1, "data_collection_order": 1}],
            "%s t_other blocks: %r" % (prefix, blocks))
        check([v["transaction"] for _, v in alls] == [
            {"id": xid1, "total_order": 3, "data_collection_order": 1}],
            "%s t_all block" % prefix)
    xid = c.sql_value("SELECT xmin FROM t_other WHERE id = 3")
    check(xid2.split(":")[0] == str(xid).strip(),
          "the id starts with the xid: %s, xmin %s" % (xid2, xid))
    d.stop()
    tk.drop_slot(c, "dbz_txn")
    mock.stop()


def case_messages(c):
    mock = h.KafkaMock(c.tmp, brokers=1)
    for t in ("walcast.message", "__debezium-heartbeat.walcast"):
        mock.cmd("topic %s 1" % t)
    d = run_walcastd(c, "dbz-msg", "dbz_msg", dbz_sink(
        mock.bootstrap, [("value_format", "debezium"),
                         ("messages_topic", "walcast.message"),
                         ("heartbeat_topic",
                          "__debezium-heartbeat.walcast")]),
        extra="heartbeat:\n  interval: 1s\n  deliver: true\n")
    c.sql("BEGIN;"
          "SELECT pg_logical_emit_message(true, 'audit', 'paid');"
          "INSERT INTO t_other VALUES (100, 'x');"
          "COMMIT;"
          "SELECT pg_logical_emit_message(false, 'outside', "
          "'\\xfe80'::bytea);")

    def beats():
        return len(raw_records(mock.bootstrap,
                               "__debezium-heartbeat.walcast")) >= 2
    h.wait_until(beats, timeout=30, interval=1, what="two heartbeats")
    tk.wait_confirmed(c, "dbz_msg", d)
    msgs = raw_records(mock.bootstrap, "walcast.message")
    got = [(k, v["op"], v["message"]) for k, v in msgs]
    check(got == [({"prefix": "audit"}, "m",
                   {"prefix": "audit", "content": "cGFpZA=="}),
                  ({"prefix": "outside"}, "m",
                   {"prefix": "outside", "content": "/oA="})],
          "messages: %r" % got)
    check(isinstance(msgs[0][1]["source"]["txId"], int) and
          msgs[1][1]["source"]["txId"] is None,
          "txId: in a transaction only")
    hb = raw_records(mock.bootstrap, "__debezium-heartbeat.walcast")
    check(all(k == {"serverName": "walcast"} and isinstance(v["ts_ms"], int)
              and set(v) == {"ts_ms"} for k, v in hb), "heartbeats: %r" % hb)
    check(not any(v["message"]["prefix"] == "walcast.heartbeat"
                  for _, v in msgs), "heartbeats are not messages")
    d.stop()
    tk.drop_slot(c, "dbz_msg")
    mock.stop()


def case_columns(c):
    c.sql("CREATE TABLE users (id int PRIMARY KEY, email text, "
          "  password_hash text, nick text);"
          "CREATE TABLE events (code text NOT NULL, v int);"
          "ALTER TABLE events REPLICA IDENTITY FULL;")
    mock = h.KafkaMock(c.tmp, brokers=1)
    for t in ("walcast.public.users", "walcast.public.events",
              "walcast.public.secrets"):
        mock.cmd("topic %s 1" % t)
    rules = ("      mask_salt: ${WC_TEST_SALT}\n"
             "      columns:\n"
             "        - tables: [users]\n"
             "          exclude: [password_hash]\n"
             "          mask: [email]\n"
             "        - tables: [public.events]\n"
             "          key_columns: [code]\n")
    os.environ["WC_TEST_SALT"] = "pepper"
    try:
        d = run_walcastd(c, "dbz-cols", "dbz_cols", dbz_sink(
            mock.bootstrap, [("value_format", "debezium")]) + rules)
    finally:
        del os.environ["WC_TEST_SALT"]
    c.sql("INSERT INTO users VALUES (1, 'a@b.ch', 'x', NULL);"
          "UPDATE users SET nick = 'n' WHERE id = 1;"
          "INSERT INTO events VALUES ('E1', 1), ('E2', 2);"
          "UPDATE events SET v = 3 WHERE code = 'E1';"
          "DELETE FROM events WHERE code = 'E2';")
    tk.wait_confirmed(c, "dbz_cols", d)
    digest = hashlib.sha256(b"pepper" + b"a@b.ch").hexdigest()
    users = raw_records(mock.bootstrap, "walcast.public.users")
    check([v["after"] for _, v in users] == [
        {"id": 1, "email": digest, "nick": None},
        {"id": 1, "email": digest, "nick": "n"}],
        "users: %r" % [v["after"] for _, v in users])
    check(all(k == {"id": 1} for k, _ in users), "users keyed by id")
    events = raw_records(mock.bootstrap, "walcast.public.events")
    got = [(k, v["op"] if v else None) for k, v in events]
    check(got == [({"code": "E1"}, "c"), ({"code": "E2"}, "c"),
                  ({"code": "E1"}, "u"), ({"code": "E2"}, "d"),
                  ({"code": "E2"}, None)],
          "events, keyed by code: %r" % got)
    d.stop()
    tk.drop_slot(c, "dbz_cols")

    # a rule that leaves out the primary key of a table created after
    # start (the check at start saw no such table): refused at the table
    d = run_walcastd(c, "dbz-cols-bad", "dbz_cols_bad", dbz_sink(
        mock.bootstrap, [("value_format", "debezium")]) +
        "      columns:\n        - tables: [secrets]\n"
        "          exclude: [id]\n")
    c.sql("CREATE TABLE secrets (id int PRIMARY KEY, s text);")
    # past the CREATE TABLE, which walcastd may confirm
    before = h.lsn_int(c.sql_value("SELECT pg_current_wal_insert_lsn()::text"))
    c.sql("INSERT INTO secrets VALUES (1, 's');")
    h.wait_until(lambda: "excludes its primary-key column" in d.stderr(),
                 timeout=30, what="the refusal")
    time.sleep(2.5)  # two status intervals: what it confirms, it has said
    err = d.stderr()
    check('table "public"."secrets": the column rule excludes its '
          'primary-key column "id", which keys its messages: not confirming '
          'past its changes; leave the column in, or name key_columns' in err,
          "the refusal's words:\n" + err[-2000:])
    check(err.count("excludes its primary-key column") == 1,
          "said once, not at every replay")
    check(raw_records(mock.bootstrap, "walcast.public.secrets") == [],
          "nothing of the table went out")
    conf = h.lsn_int(c.slot("dbz_cols_bad")["confirmed_flush_lsn"] or "0/0")
    check(conf <= before, "the slot confirmed %s, past the refused change "
          "at %s" % (h.lsn_str(conf), h.lsn_str(before)))
    d.stop()
    tk.drop_slot(c, "dbz_cols_bad")
    mock.stop()


def expect_refused(c, name, slot, sinks, words):
    """walcastd exits 78 with the words and no slot; walcastd --check too
    (the database is reachable)."""
    cfg = h.write_config(os.path.join(c.tmp, name + ".yaml"), c.dsn(), slot,
                         None, extra="sinks:\n" + sinks)
    for what, argv in (("walcastd", [h.binary("walcastd"), "-c", cfg]),
                       ("walcastd --check",
                        [h.binary("walcastd"), "-c", cfg, "--check"])):
        r = h.run(argv, timeout=60)
        check(r.returncode == 78, "%s exited %d, expected 78: %s"
              % (what, r.returncode, r.stderr))
        for w in words:
            check(w in r.stderr, "%s: %r lacks %r" % (what, r.stderr, w))
    check(c.slot(slot) is None, "walcastd created slot %s before refusing "
          "the configuration" % slot)


def case_columns_at_start(c):
    c.sql("CREATE TABLE r_pk (id int, part int, a text, "
          "  PRIMARY KEY (id, part));"
          "CREATE TABLE r_nopk (code text NOT NULL, v int);"
          "CREATE TABLE r_skip (id int PRIMARY KEY, v int);")
    mock = h.KafkaMock(c.tmp, brokers=1)
    mock.cmd("topic walcast.public.r_pk 1")
    sink = dbz_sink(mock.bootstrap, [("value_format", "debezium")])

    def rules(*items):
        return "      columns:\n" + "".join(
            "        - %s\n" % "\n          ".join(it) for it in items)

    # key_columns naming a column the table does not have
    expect_refused(c, "cs-nocol", "cs_nocol", sink + rules(
        ["tables: [r_nopk]", "key_columns: [code, nope]"]),
        ['sink "kafka": table "public"."r_nopk" has no column "nope", which '
         'the column rule for tables "r_nopk" names in key_columns'])
    # excluding a column of the primary key (the second one)
    expect_refused(c, "cs-expk", "cs_expk", sink + rules(
        ["tables: [\"public.r_*\"]", "exclude: [part]"]),
        ['sink "kafka": the column rule for tables "public.r_*" excludes '
         'column "part" of table "public"."r_pk", part of its primary key, '
         'which keys the messages; leave the column in, or name key_columns'])
    # excluding a column key_columns name (by a glob: the configuration
    # alone refuses the same name in both lists)
    expect_refused(c, "cs-exkc", "cs_exkc", sink + rules(
        ["tables: [r_nopk]", "key_columns: [code]", "exclude: [\"co*\"]"]),
        ['sink "kafka": the column rule for tables "r_nopk" excludes column '
         '"code" of table "public"."r_nopk", which its key_columns name'])

    # what is not refused: key_columns replacing the excluded primary key,
    # a masked key column, a table the sink does not take; a rule for no
    # table is a warning
    good = (sink + "      tables:\n        exclude: [r_skip]\n"
            "      mask_salt: salt\n" + rules(
        ["tables: [r_pk]", "exclude: [part]", "key_columns: [id, a]"],
        ["tables: [r_nopk]", "mask: [code]", "key_columns: [code]"],
        ["tables: [r_skip]", "exclude: [id]"],
        ["tables: [not_yet]", "exclude: [x]"]))
    cfg = h.write_config(os.path.join(c.tmp, "cs-good.yaml"), c.dsn(),
                         "cs_good", None, extra="sinks:\n" + good)
    r = h.run([h.binary("walcastd"), "-c", cfg, "--check"], timeout=60)
    check(r.returncode == 0, "--check: exit %d: %s" % (r.returncode,
                                                       r.stderr))
    for w in ('the column rule for tables "r_skip" matches no table the '
              'sink takes now', 'the column rule for tables "not_yet" '
              'matches no table'):
        check(w in r.stderr, "--check: %r lacks %r" % (r.stderr, w))
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-cs-good")
    c.sql("INSERT INTO r_pk VALUES (1, 2, 'x');")
    tk.wait_confirmed(c, "cs_good", d)
    got = raw_records(mock.bootstrap, "walcast.public.r_pk")
    check([(k, v["after"]) for k, v in got] ==
          [({"id": 1, "a": "x"}, {"id": 1, "a": "x"})],
          "r_pk keyed by its key_columns: %r" % got)
    # a reload to a rule the catalog refuses: refused, the rules in force
    # stay
    with open(cfg) as f:
        text = f.read()
    with open(cfg, "w") as f:
        f.write(text.replace("key_columns: [id, a]", "key_columns: [id, b]"))
    d.send(signal.SIGHUP)
    h.wait_until(lambda: "reload refused" in d.stderr(), timeout=30,
                 what="the reload to be refused")
    check('table "public"."r_pk" has no column "b", which the column rule '
          'for tables "r_pk" names in key_columns' in d.stderr(),
          "the refusal names table and column:\n" + d.stderr()[-2000:])
    c.sql("INSERT INTO r_pk VALUES (2, 2, 'y');")
    tk.wait_confirmed(c, "cs_good", d)
    got = raw_records(mock.bootstrap, "walcast.public.r_pk")
    check([k for k, _ in got] == [{"id": 1, "a": "x"}, {"id": 2, "a": "y"}],
          "keyed by the rules in force after the refused reload: %r" % got)
    d.stop()
    tk.drop_slot(c, "cs_good")

    # the database out of reach: --check does not fail for that alone
    bad_dsn = "host=127.0.0.1 port=1 dbname=x connect_timeout=2"
    cfg = h.write_config(os.path.join(c.tmp, "cs-unreach.yaml"), bad_dsn,
                         "cs_unreach", None, extra="sinks:\n" + sink + rules(
                             ["tables: [r_pk]", "exclude: [id]"]))
    r = h.run([h.binary("walcastd"), "-c", cfg, "--check"], timeout=60)
    check(r.returncode == 0, "--check with the database out of reach: "
          "exit %d: %s" % (r.returncode, r.stderr))
    check('sink "kafka": could not look up its tables in the catalog' in
          r.stderr and "checked as each table's first change arrives" in
          r.stderr, "--check says why it did not check: %r" % r.stderr)
    mock.stop()


def enum_schema(rec, column):
    """The schema of column in the after struct of one record's value."""
    after = [f for f in rec[1]["schema"]["fields"]
             if f["field"] == "after"][0]
    return [f for f in after["fields"] if f["field"] == column][0]


def enum_field(column, allowed):
    return {"type": "string", "optional": True,
            "name": "io.debezium.data.Enum", "version": 1,
            "parameters": {"allowed": allowed}, "field": column}


def case_enum(c):
    c.sql('CREATE SCHEMA "town6-govikon";'
          'CREATE TYPE "town6-govikon".status AS ENUM '
          "  ('new', 'open', 'done');"
          'CREATE TABLE "town6-govikon".tickets (id int PRIMARY KEY, '
          '  status "town6-govikon".status, s2 "town6-govikon".status[]);')
    mock = h.KafkaMock(c.tmp, brokers=1)
    for t in ("walcast.town6-govikon.tickets", "walcast.public.later",
              "walcast.public.gone", "walcast.public.rs"):
        mock.cmd("topic %s 1" % t)
    sink = dbz_sink(mock.bootstrap, [("value_format", "debezium"),
                                     ("schemas_enable", "true")])
    d = run_walcastd(c, "dbz-enum", "dbz_enum", sink)
    c.sql('INSERT INTO "town6-govikon".tickets VALUES (1, \'open\', NULL);'
          # a type created after start: looked up at its first change
          "CREATE TYPE public.later_t AS ENUM ('x', 'y');"
          "CREATE TABLE later (id int PRIMARY KEY, l public.later_t);"
          "INSERT INTO later VALUES (1, 'y');")
    tk.wait_confirmed(c, "dbz_enum", d)
    # values added after start, to a type known at start and to one met
    # since: a value not among the labels known makes them looked up
    c.sql('ALTER TYPE "town6-govikon".status ADD VALUE \'closed\'')
    c.sql("ALTER TYPE public.later_t ADD VALUE 'w' BEFORE 'x'")
    c.sql('INSERT INTO "town6-govikon".tickets VALUES (2, \'closed\', '
          "  NULL);"
          "INSERT INTO later VALUES (2, 'w');")
    tk.wait_confirmed(c, "dbz_enum", d)
    recs = raw_records(mock.bootstrap, "walcast.town6-govikon.tickets")
    check(len(recs) == 2, "two records: %r" % recs)
    check([r[1]["payload"]["after"]["status"] for r in recs] ==
          ["open", "closed"], "payloads: %r" % recs)
    for rec, allowed in zip(recs, ("new,open,done", "new,open,done,closed")):
        st = enum_schema(rec, "status")
        check(st == enum_field("status", allowed),
              "status's schema, %s expected: %r" % (allowed, st))
    recs = raw_records(mock.bootstrap, "walcast.public.later")
    check([r[1]["payload"]["after"]["l"] for r in recs] == ["y", "w"],
          "payloads: %r" % recs)
    for rec, allowed in zip(recs, ("x,y", "w,x,y")):
        lt = enum_schema(rec, "l")
        check(lt == enum_field("l", allowed),
              "an enum created after start, %s expected: %r" % (allowed, lt))
    # the server restarted: the catalog connection the sink kept is
    # found closed and made again, the stream does not notice
    c.restart()
    c.sql("CREATE TYPE public.rs_t AS ENUM ('r1', 'r2');"
          "CREATE TABLE rs (id int PRIMARY KEY, r public.rs_t);"
          "INSERT INTO rs VALUES (1, 'r2');")
    tk.wait_confirmed(c, "dbz_enum", d)
    recs = raw_records(mock.bootstrap, "walcast.public.rs")
    check(len(recs) == 1 and enum_schema(recs[0], "r") ==
          enum_field("r", "r1,r2"), "after a server restart: %r" % recs)
    d.stop()
    check("could not look up enum types" not in d.stderr(),
          "no lookup failed:\n" + d.stderr()[-2000:])
    # a type dropped before walcastd reads its change: text, said
    c.sql("CREATE TYPE public.gone_t AS ENUM ('a');"
          "CREATE TABLE gone (id int PRIMARY KEY, g public.gone_t);"
          "INSERT INTO gone VALUES (1, 'a');")
    oid = c.sql_value("SELECT 'public.gone_t'::regtype::oid")
    c.sql("DROP TABLE gone; DROP TYPE public.gone_t;")
    d = run_walcastd(c, "dbz-enum", "dbz_enum", sink)
    tk.wait_confirmed(c, "dbz_enum", d)
    recs = raw_records(mock.bootstrap, "walcast.public.gone")
    check(len(recs) == 1 and recs[0][1]["payload"]["after"]["g"] == "a",
          "the dropped type's change: %r" % recs)
    g = enum_schema(recs[0], "g")
    check(g.get("name") == "walcast.data.Text", "a dropped type: %r" % g)
    d.stop()
    err = d.stderr()
    check(err.count("type %s is no longer in the catalog" % oid) == 1,
          "the dropped type said once:\n" + err[-2000:])
    tk.drop_slot(c, "dbz_enum")
    mock.stop()


def case_outbox(c):
    c.sql('CREATE SCHEMA "shop-bern"; CREATE SCHEMA "shop-thun";'
          "CREATE TABLE \"shop-bern\".outbox (id uuid PRIMARY KEY, "
          "  aggregatetype text, aggregateid text, type text, payload jsonb);"
          "CREATE TABLE \"shop-thun\".outbox (LIKE \"shop-bern\".outbox "
          "  INCLUDING ALL);"
          "CREATE TABLE \"shop-bern\".orders (id int PRIMARY KEY);")
    mock = h.KafkaMock(c.tmp, brokers=1)
    for t in ("shop.bern.order", "shop.thun.order", "shop.bern.invoice",
              "walcast.shop-bern.orders"):
        mock.cmd("topic %s 1" % t)
    d = run_walcastd(c, "outbox", "outbox", dbz_sink(mock.bootstrap, []) +
                     "      outbox:\n"
                     "        tables: [\"*.outbox\"]\n"
                     "        topic: \"{namespace}.{tenant}.{aggregatetype}\"\n"
                     "        headers: [type]\n")
    ev = ("INSERT INTO \"%s\".outbox VALUES ('%s', '%s', '%s', '%s', "
          "'%s'::jsonb); DELETE FROM \"%s\".outbox WHERE id = '%s';")
    u1, u2, u3 = ("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1%d" % i
                  for i in (1, 2, 3))
    c.sql("BEGIN;" +
          "INSERT INTO \"shop-bern\".orders VALUES (7);" +
          ev % ("shop-bern", u1, "order", "o-7", "OrderCreated",
                '{"id": 7, "total": 12.5}', "shop-bern", u1) +
          "COMMIT;" +
          ev % ("shop-thun", u2, "order", "o-8", "OrderCreated",
                '{"id": 8}', "shop-thun", u2) +
          "INSERT INTO \"shop-bern\".outbox VALUES ('%s', 'invoice', "
          "'i-1', 'InvoiceSent', NULL);" % u3 +
          "UPDATE \"shop-bern\".outbox SET type = 'x';")
    tk.wait_confirmed(c, "outbox", d)

    def events(topic):
        argv = [h.kcat_path(), "-b", mock.bootstrap, "-C", "-t", topic,
                "-o", "beginning", "-e", "-J", "-q"]
        r = h.run(argv, timeout=60)
        check(r.returncode == 0, "kcat: %s" % r.stderr)
        out = []
        for line in r.stdout.splitlines():
            j = json.loads(line)
            hd = j.get("headers") or []
            hd = dict(zip(hd[0::2], hd[1::2]))
            out.append((j.get("key"), j.get("payload"),
                        {k: v for k, v in hd.items()
                         if not k.startswith("walcast.")}))
        return out
    bern = events("shop.bern.order")
    check(bern == [('"o-7"', '{"id": 7, "total": 12.5}',
                    {"id": u1, "type": "OrderCreated"})],
          "shop.bern.order: %r" % bern)
    thun = events("shop.thun.order")
    check(thun == [('"o-8"', '{"id": 8}',
                    {"id": u2, "type": "OrderCreated"})],
          "shop.thun.order: %r" % thun)
    inv = events("shop.bern.invoice")
    check(inv == [('"i-1"', None, {"id": u3, "type": "InvoiceSent"})],
          "a null payload is a null value: %r" % inv)
    orders = raw_records(mock.bootstrap, "walcast.shop-bern.orders")
    check([v["op"] for _, v in orders] == ["c"],
          "the other tables as before: %r" % orders)
    topics = [t["topic"] for t in tk.metadata(mock.bootstrap)["topics"]]
    check(not any("outbox" in t for t in topics),
          "no outbox table's own topic: %r" % topics)
    d.stop()
    err = d.stderr()
    check(err.count("updates are not published") == 1,
          "the outbox update said once:\n" + err[-2000:])
    tk.drop_slot(c, "outbox")
    mock.stop()


def case_topic_creation(c):
    c.sql("CREATE TABLE tc (id int PRIMARY KEY);")
    mock = h.KafkaMock(c.tmp, brokers=1)
    d = run_walcastd(c, "tc", "tc", dbz_sink(mock.bootstrap, []) +
                     "      topic_creation:\n"
                     "        partitions: 3\n"
                     "        replication_factor: 1\n"
                     "        config: {cleanup.policy: compact}\n"
                     "        timeout: 1s\n")
    before = h.lsn_int(c.current_lsn())
    c.sql("INSERT INTO tc VALUES (1);")
    want = ('could not create topic "walcast.public.tc": Failed while '
            'waiting for controller: Local: Timed out: not confirming past '
            'its changes; create it, or check topic_creation')
    h.wait_until(lambda: want in d.stderr(), timeout=30,
                 what="the creation's failure")
    conf = h.lsn_int(c.slot("tc")["confirmed_flush_lsn"] or "0/0")
    check(conf <= before, "confirmed %s past the change at %s"
          % (h.lsn_str(conf), h.lsn_str(before)))
    # replayed after the backoff, and failing the same way
    time.sleep(2)
    check(d.stderr().count(want) >= 2, "the change is tried again")
    d.stop()
    tk.drop_slot(c, "tc")
    mock.stop()


def case_topic_creation_requests(c):
    """The success path, with tests/integration/kafka_admin_proxy.py
    answering CreateTopics in front of the mock (which cannot): what the
    sink asks for, once per name, and that its messages then go there."""
    c.sql('CREATE SCHEMA "tc-bern";'
          'CREATE TABLE "tc-bern".orders (id int PRIMARY KEY);'
          'CREATE TABLE "tc-bern".items (id int PRIMARY KEY);'
          'CREATE TABLE "tc-bern".pre (id int PRIMARY KEY);'
          # another namespace's tenant "bern": the same topic
          'CREATE SCHEMA "eu-bern";'
          'CREATE TABLE "eu-bern".orders (id int PRIMARY KEY);')
    mock = h.KafkaMock(c.tmp, brokers=1)
    proxy = kafka_admin_proxy.AdminProxy(mock)
    # a topic that exists: asked for, answered so, used as it is
    mock.cmd("topic tc.bern.pre 2")
    proxy.exists.add("tc.bern.pre")
    sink = (h.kafka_sink_yaml(proxy.bootstrap, topic="tc.{tenant}.{table}") +
            "      transactions_topic: tc.transactions\n"
            "      topic_creation:\n"
            "        partitions: 3\n"
            "        replication_factor: 1\n"
            "        config: {cleanup.policy: compact, retention.ms: "
            "\"86400000\"}\n"
            "        timeout: 4s\n")
    d = run_walcastd(c, "tcreq", "tcreq", sink)
    c.sql('INSERT INTO "tc-bern".orders VALUES (1);')
    c.sql('INSERT INTO "tc-bern".orders VALUES (2);'
          'INSERT INTO "tc-bern".items VALUES (1);'
          'INSERT INTO "tc-bern".pre VALUES (1);'
          'INSERT INTO "eu-bern".orders VALUES (10);')
    tk.wait_confirmed(c, "tcreq", d)
    # a tenant that appears after start gets its topics as it does
    c.sql('CREATE SCHEMA "tc-thun";'
          'CREATE TABLE "tc-thun".orders (id int PRIMARY KEY);'
          'INSERT INTO "tc-thun".orders VALUES (1);')
    tk.wait_confirmed(c, "tcreq", d)
    want = {"partitions": 3, "replication_factor": 1, "assignments": [],
            "config": {"cleanup.policy": "compact",
                       "retention.ms": "86400000"},
            "timeout_ms": 4000, "validate_only": False}
    names = ["tc.bern.orders", "tc.bern.items", "tc.bern.pre",
             "tc.thun.orders", "tc.transactions"]
    asked = proxy.asked()
    check(sorted(t["name"] for t in asked) == sorted(names),
          "one request per topic, no other: %r" % asked)
    for t in asked:
        check({k: v for k, v in t.items() if k != "name"} == want,
              "the request for %s: %r" % (t["name"], t))
    parts = {t["topic"]: len(t["partitions"])
             for t in tk.metadata(mock.bootstrap)["topics"]}
    for n in names:
        check(parts.get(n) == (2 if n == "tc.bern.pre" else 3),
              "%s has %r partitions" % (n, parts.get(n)))
    counts = {n: len(raw_records(mock.bootstrap, n)) for n in names}
    check(counts == {"tc.bern.orders": 3, "tc.bern.items": 1,
                     "tc.bern.pre": 1, "tc.thun.orders": 1,
                     # BEGIN and END of each of the 6 transactions
                     "tc.transactions": 12},
          "the messages went to the topics made: %r" % counts)
    d.stop()
    err = d.stderr()
    check("could not create" not in err, "no failure:\n" + err[-2000:])
    for n in names:
        check(err.count('created topic "%s"' % n) ==
              (0 if n == "tc.bern.pre" else 1),
              "%s: created said once, or not for the one that existed:\n%s"
              % (n, err[-2000:]))
    # another start asks again, once, and is told they exist
    d = run_walcastd(c, "tcreq", "tcreq", sink)
    c.sql('INSERT INTO "tc-bern".orders VALUES (3);')
    tk.wait_confirmed(c, "tcreq", d)
    again = [t["name"] for t in proxy.asked()[len(asked):]]
    check(sorted(again) == ["tc.bern.orders", "tc.transactions"],
          "asked again after a restart: %r" % again)
    check(len(raw_records(mock.bootstrap, "tc.bern.orders")) == 4,
          "the change after the restart delivered")
    d.stop()
    check("could not create" not in d.stderr() and
          "created topic" not in d.stderr(),
          "existing topics used as they are:\n" + d.stderr()[-2000:])
    tk.drop_slot(c, "tcreq")
    proxy.stop()
    mock.stop()


def test():
    h.kcat_path()
    c = h.Cluster()
    c.sql(DDL)
    cases = h.Cases()
    cases.run("debezium: every type, with schemas", case_types, c)
    cases.run("debezium: decimal_handling string, time_precision connect",
              case_options, c)
    cases.run("transactions_topic: BEGIN, END and the blocks",
              case_transactions, c)
    cases.run("messages_topic and heartbeat_topic", case_messages, c)
    cases.run("column rules: exclude, mask, key_columns", case_columns, c)
    cases.run("column rules checked against the catalog at start",
              case_columns_at_start, c)
    cases.run("enums: labels of types and values added after start",
              case_enum, c)
    cases.run("outbox: events routed by aggregatetype", case_outbox, c)
    cases.run("topic_creation: a failure names the topic, confirms nothing",
              case_topic_creation, c)
    cases.run("topic_creation: the requests, once per topic",
              case_topic_creation_requests, c)
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
