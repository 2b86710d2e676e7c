# SPDX-License-Identifier: MIT
"""bench/kafka_floor produces exactly the messages of its dump.

bench/kafka-floor sets walcastd's CPU per change against what librdkafka
alone costs to produce the same messages; that comparison holds only if
kafka_floor sends each message as the Kafka sink would: to its topic,
with its key and value (null when the field is empty), the three
walcast.* headers, in order.  This produces a hand-made dump into the
mock cluster and reads it back with kcat; then checks the pacing (-r)
and that bad input is refused with a message that names it.
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

HEADERS = ("walcast.lsn", "walcast.commit_lsn", "walcast.xid")


def floor_path():
    p = os.environ.get("WC_KAFKA_FLOOR")
    if not p:
        h.fail("WC_KAFKA_FLOOR is not set (the kafka_floor target is not "
               "built)")
    return p


def dump_lines():
    """(topic, key, value, lsn, commit_lsn, xid): inserts in two topics,
    a delete and its tombstone, a truncate (null key)."""
    rows = []
    lsn = 1000
    for i in range(40):
        t = "floor.t%d.items" % (i % 2)
        rows.append((t, '{"id":%d}' % i,
                     '{"before":null,"after":{"id":%d,"note":"a\\tb"},'
                     '"op":"c"}' % i, str(lsn), str(lsn + 500), str(700 + i)))
        lsn += 8
    rows.append(("floor.t0.items", '{"id":0}',
                 '{"before":{"id":0},"after":null,"op":"d"}', str(lsn),
                 str(lsn + 8), "800"))
    rows.append(("floor.t0.items", '{"id":0}', "", str(lsn), str(lsn + 8),
                 "800"))
    rows.append(("floor.t1.items", "", '{"op":"t"}', str(lsn + 16),
                 str(lsn + 24), "801"))
    return rows


def read_topic(boot, topic):
    p = subprocess.run(
        [h.kcat_path(), "-b", boot, "-C", "-t", topic, "-o", "beginning",
         "-e", "-q", "-Z", "-f", "%p\\t%k\\t%s\\t%h\\n"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    check(p.returncode == 0, "kcat -C %s: %s" % (topic, p.stderr.decode()))
    out = []
    for line in p.stdout.decode().split("\n"):
        if line:
            out.append(line.split("\t"))
    return out


def run_floor(args, timeout=120):
    return subprocess.run([floor_path()] + args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


def parse(stdout):
    f = stdout.split()
    return dict(zip(f[0::2], f[1::2]))


def case_same_messages(tmp):
    mock = h.KafkaMock(tmp, brokers=1)
    rows = dump_lines()
    path = os.path.join(tmp, "dump")
    with open(path, "w") as f:
        for r in rows:
            f.write("\t".join(r) + "\n")
    p = run_floor(["-b", "7", mock.bootstrap, path])
    check(p.returncode == 0, "kafka_floor exited %d: %s"
          % (p.returncode, p.stderr))
    r = parse(p.stdout)
    check(r.get("messages") == str(len(rows)),
          "kafka_floor says %r, want %d messages" % (p.stdout, len(rows)))
    check(float(r["cpu"]) > 0 and float(r["wall"]) > 0,
          "no CPU or wall time in %r" % p.stdout)
    for topic in sorted({r[0] for r in rows}):
        want = [r for r in rows if r[0] == topic]
        got = read_topic(mock.bootstrap, topic)
        check(len(got) == len(want), "%s: %d messages, want %d"
              % (topic, len(got), len(want)))
        # kcat -Z prints a null key or value as NULL
        seen = {}
        for g in got:
            part, key, value, hdrs = g
            hv = dict(kv.split("=", 1) for kv in hdrs.split(","))
            seen.setdefault(key, []).append(
                (value, tuple(hv.get(n) for n in HEADERS)))
            if key != "NULL":
                check(seen.setdefault(("part", key), part) == part,
                      "%s: key %s in two partitions" % (topic, key))
        expect = {}
        for _, key, value, lsn, commit, xid in want:
            expect.setdefault(key or "NULL", []).append(
                (value or "NULL", (lsn, commit, xid)))
        for key, msgs in expect.items():
            # per key: the same messages in the same order (one partition)
            check(seen.get(key) == msgs, "%s key %s: got %r, want %r"
                  % (topic, key, seen.get(key), msgs))
    mock.stop()


def case_paced(tmp):
    mock = h.KafkaMock(tmp, brokers=1)
    path = os.path.join(tmp, "paced")
    with open(path, "w") as f:
        for i in range(50):
            f.write("floor.paced\t{\"id\":%d}\t{}\t%d\t%d\t1\n"
                    % (i, i, i + 100))
    t0 = time.monotonic()
    p = run_floor(["-r", "200", "-b", "10", mock.bootstrap, path])
    took = time.monotonic() - t0
    check(p.returncode == 0, "kafka_floor -r: %s" % p.stderr)
    # 50 messages at 200 a second: the last burst is due at 0.25 s
    check(took >= 0.24 and float(parse(p.stdout)["wall"]) >= 0.24,
          "50 messages at -r 200 took %.3f s (%s), want 0.25 s or more"
          % (took, p.stdout.strip()))
    mock.stop()


def case_bad_input(tmp):
    path = os.path.join(tmp, "bad")
    with open(path, "w") as f:
        f.write("t\tk\tv\t1\t2\t3\n")
        f.write("t\tk\tv\t1\t2\n")
    p = run_floor(["127.0.0.1:1", path])
    check(p.returncode == 2 and "%s:2: want 6 tab-separated fields" % path
          in p.stderr, "a short line: exit %d, %r" % (p.returncode,
                                                      p.stderr))
    p = run_floor(["127.0.0.1:1", os.path.join(tmp, "absent")])
    check(p.returncode == 2 and "absent: No such file" in p.stderr,
          "a missing dump: exit %d, %r" % (p.returncode, p.stderr))
    good = os.path.join(tmp, "good")
    with open(good, "w") as f:
        f.write("t\tk\tv\t1\t2\t3\n")
    p = run_floor(["127.0.0.1:1", good, "no.such.property=1"])
    check(p.returncode == 2 and 'Kafka property "no.such.property"'
          in p.stderr, "an unknown property: exit %d, %r"
          % (p.returncode, p.stderr))
    p = run_floor(["-r", "fast", "127.0.0.1:1", good])
    check(p.returncode == 2 and "usage:" in p.stderr,
          "-r fast: exit %d, %r" % (p.returncode, p.stderr))


def test():
    tmp = h.make_tmpdir()
    case_same_messages(tmp)
    case_paced(tmp)
    case_bad_input(tmp)


if __name__ == "__main__":
    h.main(test)
