# SPDX-License-Identifier: MIT
"""One transaction of 1,000,000 inserts (~100-byte rows) streams completely
through walcastd, and the daemon's peak RSS (VmHWM) stays under 64 MB."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, fail  # noqa: E402

ROWS = 1000000
LIMIT_KB = 64 * 1024
ID_RE = re.compile(rb'"columns":\[\{"name":"id","type":"integer",'
                   rb'"typeoid":23,"value":(\d+)\}')


def verify_file(path):
    """Streams through the output: every line an insert into big, ids
    1..ROWS each once (by count and sum), one xid."""
    n, total, xids, bad = 0, 0, set(), []
    with open(path, "rb") as f:
        for line in f:
            n += 1
            m = ID_RE.search(line)
            if not m or not line.startswith(b'{"op":"insert",'):
                if len(bad) < 3:
                    bad.append(line[:300])
                continue
            total += int(m.group(1))
            if n % 50000 == 1 or n == ROWS:
                e = h.loads(line.decode())
                xids.add(str(e.get("xid")))
                check(e.get("schema") == "town6-govikon" and
                      e.get("table") == "big", "line %d: %r" % (n, line[:300]))
                check(len(e["columns"]) == 2 and
                      len(e["columns"][1]["value"]) == 96,
                      "line %d: payload column: %r" % (n, line[:300]))
    check(not bad, "lines that are not inserts into big: %r" % bad)
    check(n == ROWS, "%d lines, expected %d" % (n, ROWS))
    check(total == ROWS * (ROWS + 1) // 2, "ids are not 1..%d once each "
          "(sum %d)" % (ROWS, total))
    check(len(xids) == 1, "more than one xid: %r" % xids)


def test():
    c = h.Cluster({"max_wal_size": "1GB"})
    c.sql('CREATE SCHEMA "town6-govikon"; '
          'CREATE TABLE "town6-govikon".big (id int PRIMARY KEY, '
          'payload text);')
    out = os.path.join(c.tmp, "big.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "w.yaml"), c.dsn(), "big", out)
    d = h.start_walcastd(cfg, c.tmp)
    t0 = time.monotonic()
    c.sql('INSERT INTO "town6-govikon".big SELECT g, '
          "repeat(md5(g::text), 3) FROM generate_series(1, %d) g" % ROWS)
    h.log("insert committed in %.1fs" % (time.monotonic() - t0))
    cnt = h.LineCounter(out)
    peak = [0]

    def done():
        if d.poll() is not None:
            fail("walcastd exited during the transaction\n" + d.describe())
        peak[0] = max(peak[0], h.vm_hwm_kb(d.pid))
        return cnt() >= ROWS
    h.wait_until(done, timeout=400, interval=0.5,
                 what=lambda: "%d lines (have %d)" % (ROWS, cnt.n))
    hwm = h.vm_hwm_kb(d.pid)
    h.log("streamed %d changes in %.1fs; walcastd VmHWM = %d kB (%.1f MB)"
          % (cnt.n, time.monotonic() - t0, hwm, hwm / 1024.0))
    print("VmHWM_kB=%d" % hwm, flush=True)
    d.stop()
    verify_file(out)
    check(hwm < LIMIT_KB, "walcastd peak RSS (VmHWM) %d kB >= %d kB"
          % (hwm, LIMIT_KB))


if __name__ == "__main__":
    h.main(test)
