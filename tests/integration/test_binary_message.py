# SPDX-License-Identifier: MIT
"""A logical message whose content is not UTF-8 text.

pg_logical_emit_message takes bytea; wal2json writes the bytes into its
JSON as they are, which JSON cannot carry.  walcastd used to stop at such a
message (an invalid UTF-8 error, every restart again).  It now delivers the
bytes as base64: "content_base64" in the file sink's and the jsonl plugin's
lines instead of "content", and the stream goes on.  Text messages and
changes around them are as before.
"""

import base64
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SCHEMA = "town6-bin"
# in a transaction: bytes that are not UTF-8, with bytes wal2json escapes
# (" \ newline) among them
TX_BYTES = bytes.fromhex("41ff22c35c0a42")
NONTX_BYTES = bytes.fromhex("fe80")


def b64(b):
    return base64.b64encode(b).decode()


def test():
    c = h.Cluster()
    c.sql('CREATE SCHEMA "%s"; CREATE TABLE "%s".t (id int PRIMARY KEY)'
          % (SCHEMA, SCHEMA))
    out = os.path.join(c.tmp, "out.jsonl")
    so = os.environ.get("WC_JSONL_SO")
    jsonl = os.path.join(c.tmp, "jsonl.jsonl")
    extra = ""
    if so:
        extra = ("  - plugin:\n      path: %s\n      config:\n"
                 "        file: %s\n        fsync: \"false\"\n"
                 % (h.yq(so), h.yq(jsonl)))
    else:
        h.log("NOTICE: WC_JSONL_SO is not set: the file sink only")
    cfg = h.write_config(os.path.join(c.tmp, "bin.yaml"), c.dsn(), "bin_slot",
                         out, extra=extra)
    d = h.start_walcastd(cfg, c.tmp)
    try:
        c.sql("BEGIN; INSERT INTO \"%s\".t VALUES (1);"
              "SELECT pg_logical_emit_message(true, 'bin', '\\x%s'::bytea);"
              "COMMIT;" % (SCHEMA, TX_BYTES.hex()))
        c.sql("SELECT pg_logical_emit_message(false, 'bin', '\\x%s'::bytea)"
              % NONTX_BYTES.hex())
        c.sql("SELECT pg_logical_emit_message(false, 'txt', 'plain text')")
        c.sql('INSERT INTO "%s".t VALUES (2)' % SCHEMA)

        def last_insert(path, key):
            return any(e.get(key) == "insert" and
                       any(str(col.get("value")) == "2" for col in e["columns"])
                       for e in h.read_jsonl(path, complete_only=True))
        h.wait_until(lambda: last_insert(out, "op"), timeout=30,
                     what="the insert after the messages\n" + d.describe())

        msgs = [e for e in h.read_jsonl(out) if e["op"] == "message"]
        h.log("file sink messages: %r" % msgs)
        check(len(msgs) == 3, "%d messages in the file sink, expected 3: %r"
              % (len(msgs), msgs))
        tx, nontx, txt = msgs
        check(tx.get("content_base64") == b64(TX_BYTES) and
              "content" not in tx and tx["transactional"] is True and
              tx["prefix"] == "bin",
              "the transactional binary message: %r (expected "
              "content_base64 %s)" % (tx, b64(TX_BYTES)))
        check(nontx.get("content_base64") == b64(NONTX_BYTES) and
              "content" not in nontx and nontx["transactional"] is False,
              "the non-transactional binary message: %r" % nontx)
        check(txt.get("content") == "plain text" and
              "content_base64" not in txt, "the text message: %r" % txt)

        if so:
            h.wait_until(lambda: last_insert(jsonl, "signal"), timeout=30,
                         what="the jsonl plugin's last insert")
            jm = [e for e in h.read_jsonl(jsonl)
                  if e["signal"] == "message"]
            check([(e.get("content_base64"), e.get("content")) for e in jm]
                  == [(b64(TX_BYTES), None), (b64(NONTX_BYTES), None),
                      (None, "plain text")],
                  "the jsonl plugin's messages: %r" % jm)
        d.stop()
    finally:
        d.kill()
    return 0


if __name__ == "__main__":
    h.main(test)
