#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the fuzz target's seeds (seeds/) from recorded.txt: each seed is
a run of messages, each framed as a 2-byte big-endian length and the
message (tests/fuzz/fuzz_pgoutput.c).  One seed per transaction, preceded
by the Relation and Type messages seen before it, and one of everything."""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def frame(m):
    return struct.pack(">H", len(m)) + m


def main():
    msgs = []
    with open(os.path.join(HERE, "recorded.txt")) as f:
        for line in f:
            if line.startswith("msg "):
                msgs.append(bytes.fromhex(line.split()[2]))
    out = os.path.join(HERE, "seeds")
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        os.unlink(os.path.join(out, name))
    schema = []  # R and Y so far
    txn = []
    n = 0
    for m in msgs:
        if m[:1] in (b"R", b"Y"):
            schema.append(m)
        txn.append(m)
        if m[:1] == b"C" or (m[:1] == b"M" and m[1] == 0 and len(txn) == 1):
            with open(os.path.join(out, "txn%02d" % n), "wb") as f:
                f.write(b"".join(frame(x) for x in schema + txn))
            n += 1
            txn = []
    with open(os.path.join(out, "all"), "wb") as f:
        f.write(b"".join(frame(x) for x in msgs))
    print("%d seeds" % (n + 1))


if __name__ == "__main__":
    main()
