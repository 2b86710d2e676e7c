# SPDX-License-Identifier: MIT
"""Kafka with REPLICA IDENTITY USING INDEX on a unique index that is not
the primary key (issue 15 item 4).

The identity of an old row is then the index's columns.  A delete used to
be refused (no primary-key value to key it by) and replayed forever,
stalling every sink.  Now:

- nothing stalls: the slot confirms everything, the file sink beside the
  Kafka sink has every change, and so does Kafka;
- inserts and updates are keyed by the primary key (the new row has it);
- a delete is keyed by the identity's columns, with header
  walcast.key: identity and no tombstone;
- an update that changes the primary key goes out as an update under the
  new key (the old key is not in the WAL, and stays in a compacted topic);
- the sink warns once for the table, and the start check says what the
  sink will do for it.

Needs WC_KAFKA_MOCK and kcat.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402
import test_kafka as tk  # noqa: E402

TOPIC = "walcast.public.users"
WARN = "the WAL does not hold the primary key"


def test():
    c = h.Cluster()
    mock = h.KafkaMock(c.tmp, brokers=1)
    mock.cmd("topic %s 1" % TOPIC)
    c.sql("CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, "
          "  v text);"
          "CREATE UNIQUE INDEX users_email ON users (email);"
          "ALTER TABLE users REPLICA IDENTITY USING INDEX users_email;"
          "CREATE TABLE other (id int PRIMARY KEY);")
    out = os.path.join(c.tmp, "out.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "w.yaml"), c.dsn(), "kident",
                         out, extra=h.kafka_sink_yaml(mock.bootstrap))
    d = h.start_walcastd(cfg, c.tmp)
    h.wait_until(lambda: '"users" has REPLICA IDENTITY USING INDEX' in
                 d.stderr(), timeout=15, what="the start check")
    start = [l for l in d.stderr().splitlines()
             if '"users" has REPLICA IDENTITY USING INDEX' in l][0]
    check("the Kafka sink keys its deletes by the index's columns" in start,
          "the start check does not say what the Kafka sink does: " + start)

    c.sql("INSERT INTO users VALUES (1, 'a@x', 'a'), (2, 'b@x', 'b'), "
          "  (3, 'c@x', 'c');"
          "UPDATE users SET id = 10 WHERE id = 1;"        # pk changes
          "UPDATE users SET email = 'b2@x' WHERE id = 2;"  # identity changes
          "DELETE FROM users WHERE id = 3;"
          "DELETE FROM users WHERE id = 10;"
          "INSERT INTO other VALUES (1);")
    tk.wait_confirmed(c, "kident", d, timeout=60)
    lines = h.read_jsonl(out)
    check(len(lines) == 8, "file sink: %d lines, want 8" % len(lines))
    check(lines[-1]["table"] == "other", "the change after the deletes "
          "did not arrive: %r" % lines[-1])

    recs = tk.consume(mock.bootstrap, TOPIC)
    got = [(r.value["op"] if r.value else None, r.key,
            r.headers.get("walcast.key")) for r in recs]
    want = [("c", {"id": h.RawNum("1")}, None),
            ("c", {"id": h.RawNum("2")}, None),
            ("c", {"id": h.RawNum("3")}, None),
            ("u", {"id": h.RawNum("10")}, None),
            ("u", {"id": h.RawNum("2")}, None),
            ("d", {"email": "c@x"}, "identity"),
            ("d", {"email": "a@x"}, "identity")]
    check(got == want, "Kafka records:\n  got  %r\n  want %r" % (got, want))
    dels = [r for r in recs if r.value and r.value["op"] == "d"]
    check(all(r.value["before"] == r.key for r in dels),
          "a delete's before is its identity")
    check(sum(1 for r in recs if r.value is None) == 0,
          "no tombstone follows a delete keyed by its identity")

    d.stop()
    err = d.stderr()
    n = err.count(WARN)
    check(n == 1, "the table must be warned about once, not %d times:\n%s"
          % (n, err[-3000:]))
    check("replaying" not in err, "a change was refused:\n" + err[-3000:])
    h.log("USING INDEX without the primary key: deletes keyed by the "
          "identity, nothing stalls, warned once")


if __name__ == "__main__":
    h.main(test)
