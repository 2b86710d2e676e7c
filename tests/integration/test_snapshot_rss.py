# SPDX-License-Identifier: MIT
"""The initial snapshot of a 1,000,000-row table (~100-byte rows) reads
every row once, and walcastd's peak RSS (VmHWM) stays under 64 MB: a
snapshot holds one chunk at a time."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, fail  # noqa: E402

ROWS = 1000000
LIMIT_KB = 64 * 1024
ID_RE = re.compile(rb'^\{"op":"read","schema":"town6-govikon","table":"big",'
                   rb'.*?"columns":\[\{"name":"id","type":"integer",'
                   rb'"typeoid":23,"value":(\d+)\}')


def test():
    c = h.Cluster({"max_wal_size": "1GB"})
    c.sql('CREATE SCHEMA "town6-govikon"; '
          'CREATE TABLE "town6-govikon".big (id int PRIMARY KEY, '
          'payload text); INSERT INTO "town6-govikon".big SELECT g, '
          "repeat(md5(g::text), 3) FROM generate_series(1, %d) g" % ROWS)
    out = os.path.join(c.tmp, "big.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "w.yaml"), c.dsn(), "big", out,
                         extra="snapshot:\n  initial: true\n")
    d = h.start_walcastd(cfg, c.tmp)
    try:
        h.wait_until(lambda: "snapshot: done" in d.stderr() or
                     d.poll() is not None, timeout=600, interval=0.5,
                     what="the snapshot of 1,000,000 rows")
        check(d.poll() is None, d.describe())
        hwm = h.vm_hwm_kb(d.pid)
        n, total = 0, 0
        with open(out, "rb") as f:
            for line in f:
                m = ID_RE.match(line)
                if not m:
                    fail("not a read of big: %r" % line[:300])
                n += 1
                total += int(m.group(1))
        check(n == ROWS and total == ROWS * (ROWS + 1) // 2,
              "%d read lines (ids summing to %d), not 1..%d once each"
              % (n, total, ROWS))
        h.log("1,000,000-row snapshot: VmHWM %d kB (%.1f MB)"
              % (hwm, hwm / 1024.0))
        print("VmHWM_kB=%d" % hwm, flush=True)
        check(hwm < LIMIT_KB, "walcastd peak RSS (VmHWM) %d kB >= %d kB"
              % (hwm, LIMIT_KB))
        d.stop()
    finally:
        d.kill()


if __name__ == "__main__":
    h.main(test)
