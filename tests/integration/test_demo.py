# SPDX-License-Identifier: MIT
"""walcast demo: the real walcastd on a throwaway PostgreSQL.

1. as whoever runs the tests (root in CI: the server then runs as
   postgres): exit 0; the output has a heading per step and each kind of
   change (inserts in the three tenant schemas, the update, the bulk
   DELETE's rows by primary key, the truncate, the message); the server's
   and walcastd's PIDs are gone and so is the directory;
2. the same as an unprivileged user (nobody, through runuser), where the
   machine allows it;
3. --sink plugin: the jsonl plugin's signals, bulk_delete with the keys;
4. --sink kafka (on the mock cluster, when built): the topics written;
5. --keep: the server keeps running; the printed walcast.yaml passes
   walcastd --check; the test then stops the server by its PID;
6. a server without wal2json (--pg-bindir at a bin directory whose lib
   directory lacks it): the documented message, exit 1, nothing left;
7. SIGINT to the demo's process group in the middle (Ctrl-C): exit 0,
   everything stopped and removed.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, fail  # noqa: E402

PGBIN = h.PGBIN
HEAD = re.compile(r"PID (\d+), in (/\S+)$", re.M)
DAEMON = re.compile(r"walcastd \(.*\), PID (\d+),")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is gone for our purpose, but the demo reaps its children
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def procs_under(path):
    """PIDs whose command line names path (the server's -D ... pgdata,
    walcastd's -c ... walcast.yaml)."""
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % e, "rb") as f:
                if path.encode() in f.read():
                    out.append(int(e))
        except OSError:
            pass
    return out


_seen = set()


def _reap(pg, daemon, tmp):
    """What a demo that failed left behind, stopped by the PIDs it
    printed (a server's backends follow their postmaster)."""
    for pid, sig in ((daemon, signal.SIGKILL), (pg, signal.SIGQUIT)):
        if alive(pid):
            h.log("stopping PID %d that the demo left" % pid)
            os.kill(pid, sig)
            try:
                h.wait_until(lambda: not alive(pid), timeout=10)
            except h.TestFailure:
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(tmp, ignore_errors=True)


def where(out):
    """(server PID, walcastd PID, directory) from the demo's first lines."""
    m = HEAD.search(out)
    check(m, "no 'PID N, in DIR' line for the server:\n" + out)
    d = DAEMON.search(out)
    check(d, "no walcastd PID line:\n" + out)
    w = int(m.group(1)), int(d.group(1)), m.group(2)
    if w not in _seen:
        _seen.add(w)
        h._cleanups.append(lambda: _reap(*w))
    return w


def track(out):
    """Cleans up at exit what the demo that printed out may leave."""
    if HEAD.search(out) and DAEMON.search(out):
        where(out)


def check_gone(out):
    pg, daemon, tmp = where(out)
    for pid, what in ((pg, "server"), (daemon, "walcastd")):
        check(not alive(pid), "the %s (PID %d) is still running" % (what, pid))
    check(not os.path.exists(tmp), "%s was left behind" % tmp)
    left = procs_under(tmp)
    check(not left, "processes still name %s: %s" % (tmp, left))


def demo(*args, user=None, timeout=90):
    argv = [h.binary("walcast"), "demo"] + list(args)
    if user:
        argv = ["runuser", "-u", user, "--"] + argv
    return h.run(argv, timeout=timeout)


def lines_of(out, prefix):
    return [h.loads(l) for l in out.splitlines() if l.startswith(prefix)]


def check_file_sink(r, who):
    track(r.stdout)
    check(r.returncode == 0, "%s: walcast demo exited %d\nstdout:\n%s\n"
          "stderr:\n%s" % (who, r.returncode, r.stdout, r.stderr))
    # walcastd's warnings (an old wal2json, say) come through, marked
    for line in r.stderr.splitlines():
        check(re.match(r"walcastd: (warning: )?\S", line),
              "%s: a stderr line that is not walcastd's log: %r"
              % (who, line))
    for n in range(1, 6):
        check("== %d/5 " % n in r.stdout, "%s: no heading of step %d:\n%s"
              % (who, n, r.stdout))
    ch = lines_of(r.stdout, '{"op":')
    got = [(c["op"], c.get("schema"), c.get("table")) for c in ch]
    ins = {(c["schema"], int(c["columns"][0]["value"]))
           for c in ch if c["op"] == "insert"}
    check(ins == {("town6-govikon", i) for i in (1, 2, 3, 4)} |
          {("town6-bern", 1), ("org-acme", 1)},
          "%s: inserts %s" % (who, sorted(ins)))
    upd = [c for c in ch if c["op"] == "update"]
    check(len(upd) == 1 and int(upd[0]["identity"][0]["value"]) == 1 and
          upd[0]["columns"][2]["value"] is True,
          "%s: the update: %s" % (who, upd))
    dels = sorted(int(c["identity"][0]["value"]) for c in ch
                  if c["op"] == "delete")
    check(dels == [2, 3, 4], "%s: the bulk delete's keys: %s" % (who, dels))
    check(("truncate", "town6-bern", "ticket") in got,
          "%s: no truncate in %s" % (who, got))
    msg = [c for c in ch if c["op"] == "message"]
    check(len(msg) == 1 and msg[0]["prefix"] == "walcast-demo" and
          msg[0]["content"] == "hello", "%s: the message: %s" % (who, msg))
    check_gone(r.stdout)


def nobody_can_run():
    """The unprivileged run needs runuser, a nobody user and a build tree
    nobody can read."""
    if not h.IS_ROOT or not shutil.which("runuser"):
        return "not root, or no runuser"
    r = subprocess.run(["runuser", "-u", "nobody", "--", "test", "-x",
                        os.path.realpath(h.binary("walcastd"))])
    return None if r.returncode == 0 else "nobody cannot run walcastd here"


def test_keep():
    r = demo("--keep")
    track(r.stdout)
    check(r.returncode == 0, "--keep exited %d\n%s\n%s"
          % (r.returncode, r.stdout, r.stderr))
    pg, daemon, tmp = where(r.stdout)
    try:
        check(alive(pg), "--keep: the server (PID %d) is not running" % pg)
        check(not alive(daemon), "--keep: walcastd (PID %d) still runs"
              % daemon)
        m = re.search(r"^  config:  (\S+)$", r.stdout, re.M)
        check(m and m.group(1) == tmp + "/walcast.yaml",
              "--keep: no config line:\n" + r.stdout)
        for key in ("dsn:", "psql:", "stop:    kill -INT %d" % pg,
                    "remove:  rm -rf " + tmp):
            check(key in r.stdout, "--keep: no %r in\n%s" % (key, r.stdout))
        c = h.run([h.binary("walcastd"), "-c", m.group(1), "--check"])
        check(c.returncode == 0, "walcastd --check refused the kept config "
              "(%d): %s" % (c.returncode, c.stderr))
        # the DSN reaches the kept server
        dsn = re.search(r"^  dsn:     (.+)$", r.stdout, re.M).group(1)
        q = h.run(["psql", "-X", "-At", "-d", dsn, "-c",
                   'SELECT count(*) FROM "town6-govikon".ticket'])
        check(q.returncode == 0 and q.stdout.strip() == "1",
              "psql on the kept DSN: %s %s" % (q.stdout, q.stderr))
    finally:
        # what --keep says to do
        try:
            os.kill(pg, signal.SIGINT)
        except ProcessLookupError:
            pass
        h.wait_until(lambda: not alive(pg), timeout=30,
                     what="the kept server to stop")
        shutil.rmtree(tmp, ignore_errors=True)


def test_no_wal2json():
    base = tempfile.mkdtemp(prefix="walcast-it-pgbin-")
    h._cleanups.append(lambda: shutil.rmtree(base, ignore_errors=True))
    os.makedirs(base + "/bin")
    os.makedirs(base + "/lib")
    for b in ("initdb", "postgres", "pg_ctl"):
        os.symlink(os.path.join(PGBIN, b), os.path.join(base, "bin", b))
    before = set(e for e in os.listdir("/tmp")
                 if e.startswith("walcast-demo-"))
    r = demo("--pg-bindir", base + "/bin")
    want = ('walcast: error: wal2json is not installed for PostgreSQL 15 '
            '(no wal2json.so in "%s/lib"): install it (Debian, Ubuntu: '
            'apt-get install postgresql-15-wal2json), then run walcast demo '
            'again\n' % base)
    check(r.returncode == 1 and r.stderr == want,
          "no wal2json: exit %d, stderr %r, not %r"
          % (r.returncode, r.stderr, want))
    after = set(e for e in os.listdir("/tmp")
                if e.startswith("walcast-demo-"))
    check(after <= before, "no wal2json: left %s" % (after - before))


def test_sigint():
    # a process group of its own, signalled as a whole, as a terminal's
    # Ctrl-C does
    p = subprocess.Popen([h.binary("walcast"), "demo"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True,
                         start_new_session=True)
    out = ""
    deadline = time.monotonic() + 60
    while "== 2/5" not in out:
        line = p.stdout.readline()
        if not line or time.monotonic() > deadline:
            p.kill()
            fail("the demo ended before step 2: %s\n%s"
                 % (out, p.stderr.read()))
        out += line
    where(out)  # cleaned up even if the demo fails to
    os.killpg(p.pid, signal.SIGINT)
    try:
        rest, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("the demo did not stop within 60 s of SIGINT")
    out += rest
    check(p.returncode == 0 and "interrupted" in err,
          "SIGINT: exit %s, stderr %r" % (p.returncode, err))
    check_gone(out)


def main():
    r = demo()
    check_file_sink(r, "as %s" % ("root" if h.IS_ROOT else "this user"))
    h.log("demo as", "root" if h.IS_ROOT else "this user", "ok")

    why = nobody_can_run()
    if why:
        h.log("skipping the unprivileged run:", why)
    else:
        check_file_sink(demo(user="nobody"), "as nobody")
        h.log("demo as nobody ok")

    r = demo("--sink", "plugin")
    track(r.stdout)
    check(r.returncode == 0, "--sink plugin exited %d\n%s\n%s"
          % (r.returncode, r.stdout, r.stderr))
    sig = lines_of(r.stdout, '{"signal":')
    kinds = {s["signal"] for s in sig}
    check({"begin", "insert", "update", "delete", "bulk_delete", "truncate",
           "message", "commit"} <= kinds, "--sink plugin: signals %s" % kinds)
    bulk = [s for s in sig if s["signal"] == "bulk_delete"]
    keys = sorted(int(k[0]["value"]) for s in bulk for k in s["keys"])
    check(keys == [2, 3, 4], "--sink plugin: bulk_delete keys %s" % keys)
    check_gone(r.stdout)
    h.log("--sink plugin ok")

    if os.environ.get("WC_KAFKA_MOCK"):
        tmp = h.make_tmpdir()
        mock = h.KafkaMock(tmp, brokers=1)
        r = demo("--sink", "kafka", "--bootstrap", mock.bootstrap)
        track(r.stdout)
        check(r.returncode == 0, "--sink kafka exited %d\n%s\n%s"
              % (r.returncode, r.stdout, r.stderr))
        # 4 inserts, an update, 3 deletes and their tombstones
        for t, n in (("walcast-demo.town6-govikon.ticket", 11),
                     ("walcast-demo.org-acme.invoice", 1)):
            check("%s: %d message" % (t, n) in r.stdout,
                  "--sink kafka: no %s with %d messages in\n%s"
                  % (t, n, r.stdout))
        check_gone(r.stdout)
        h.log("--sink kafka ok")

    test_keep()
    h.log("--keep ok")
    test_no_wal2json()
    h.log("no wal2json ok")
    test_sigint()
    h.log("SIGINT ok")
    h.log("PASS")


if __name__ == "__main__":
    main()
