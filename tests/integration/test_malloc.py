# SPDX-License-Identifier: MIT
"""walcastd runs on the malloc its build says.

Builds without sanitizers link mimalloc first, so that it replaces malloc
for librdkafka, libpq and every other library of the process
(cmd/walcastd/malloc.c).  A change of link order, a toolchain that drops
an unreferenced library, or a library that brings its own malloc would
quietly give the C library's back.  walcastd names the allocator it finds
on a real block in its start-up line; this checks that line against the
build (WC_EXPECT_MALLOC, set by tests/integration/CMakeLists.txt).

No server is needed: the start-up line comes before the first connection,
which here goes to a port nobody listens on.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402


def test():
    want = os.environ.get("WC_EXPECT_MALLOC")
    check(want in ("mimalloc", "glibc"),
          "WC_EXPECT_MALLOC=%r: expected mimalloc or glibc (set by "
          "tests/integration/CMakeLists.txt)" % want)
    tmp = h.make_tmpdir()
    dsn = "host=127.0.0.1 port=%d dbname=none user=none connect_timeout=2" \
        % h.free_port()
    cfg = h.write_config(os.path.join(tmp, "malloc.yaml"), dsn, "malloc_slot",
                         os.path.join(tmp, "out.jsonl"))
    d = h.start_walcastd(cfg, tmp, name="walcastd-malloc", ready=False)
    try:
        d.wait_ready(word="starting with", timeout=20)
        m = re.search(r"\(malloc: ([^)]*)\)", d.stderr())
        check(m, "no '(malloc: ...)' in walcastd's start-up line\n"
              + d.describe())
        got = m.group(1)
        h.log("walcastd runs on %s" % got)
        check(got.split()[0] == want,
              "walcastd runs on %s, but its build should give %s\n%s"
              % (got, want, d.describe()))
        if want == "mimalloc":
            check(re.fullmatch(r"mimalloc \d+\.\d+\.\d+", got),
                  "malformed allocator version %r" % got)
    finally:
        d.kill()
    return 0


if __name__ == "__main__":
    h.main(test)
