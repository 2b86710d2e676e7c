# SPDX-License-Identifier: MIT
"""Slow clients do not take the health endpoints down.

64 sockets from loopback (16 from 127.0.0.1, 48 from 127.0.0.2-127.0.0.7)
send a request's header one byte a second, and open again a second after
the server closes them, for 12 s.  Meanwhile /healthz, /readyz and
/metrics, asked from 127.0.0.1 (an address the slow clients share) and
from 127.0.0.9, answer within 2 s each time, and the server closes every
slow socket within the documented bound: 5 s after it opened (plus a
second for the server's tick and the test's own), or at once when its
address or everyone together holds too many.  It counts what it closed:
walcast_metrics_connections_closed_total, by reason (deadline,
client_limit, total_limit), is 0 for each before the attack, above 0 for
each after it, and adds up to the slow connections the clients saw the
server close.
"""

import os
import re
import socket
import urllib.request
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SLOW = 64
ATTACK_S = 12.0
REQUEST_TIMEOUT_S = 5.0     # lib/metrics/server.c, docs/configuration.md
SLACK_S = 1.0
ANSWER_WITHIN_S = 2.0
HEADER = (b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          b"User-Agent: slow-client-trickling-one-byte-a-second\r\n"
          b"X-Padding: " + b"a" * 64 + b"\r\n\r\n")


def source_of(i):
    """16 sockets from 127.0.0.1, 8 from each of 127.0.0.2-127.0.0.7."""
    return "127.0.0.1" if i < 16 else "127.0.0.%d" % (2 + (i - 16) // 8)


class Slow:
    """One slot of the attack: a socket that trickles HEADER, and the
    lifetimes of the sockets it used: (opened, closed by the server)."""

    def __init__(self, i, port):
        self.src, self.port = source_of(i), port
        self.sock, self.sent, self.opened = None, 0, None
        self.closed_at = None           # when the server last closed it
        self.lives = []                 # (opened, closed) monotonic
        self.refused = 0

    def open(self, now):
        s = socket.socket()
        s.setblocking(False)
        s.bind((self.src, 0))
        try:
            s.connect(("127.0.0.1", self.port))
        except BlockingIOError:
            pass
        self.sock, self.sent, self.opened = s, 0, now

    def closed_by_server(self):
        """Whether the server ended the connection (EOF or reset)."""
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return False
        except OSError:
            return True
        # an answer would mean the trickle completed a request: it never
        # does within the test (the header needs ~150 s)
        check(not data, "a slow client was answered: %r" % data[:80])
        return True

    def step(self, now, attacking):
        if self.sock is not None and self.closed_by_server():
            self.lives.append((self.opened, now))
            self.sock.close()
            self.sock, self.closed_at = None, now
        if self.sock is None:
            if attacking and (self.closed_at is None
                              or now - self.closed_at >= 1.0):
                self.open(now)
            return
        if now - self.opened >= self.sent and self.sent < len(HEADER):
            try:
                self.sent += self.sock.send(HEADER[self.sent:self.sent + 1])
            except BlockingIOError:
                pass            # still connecting
            except OSError:
                pass            # closed: seen at the next step

    def close(self, now):
        if self.sock is not None:
            self.lives.append((self.opened, None if now is None else now))
            self.sock.close()
            self.sock = None


def ask(src, port, path):
    """(status, seconds) of one GET from src, or (error text, seconds)."""
    t0 = time.monotonic()
    s = socket.socket()
    s.settimeout(ANSWER_WITHIN_S + 1)
    try:
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                   % path).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        line = data.split(b"\r\n", 1)[0].decode(errors="replace")
        status = int(line.split()[1]) if line.startswith("HTTP/") else line
    except OSError as e:
        status = "%s: %s" % (type(e).__name__, e)
    finally:
        s.close()
    return status, time.monotonic() - t0


CLOSED = "walcast_metrics_connections_closed_total"
REASONS = ("deadline", "client_limit", "total_limit")


def closed_counts(port):
    """{reason: count} of CLOSED in /metrics."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=5) as r:
        text = r.read().decode()
    check("# TYPE %s counter" % CLOSED in text, "no %s family in /metrics"
          % CLOSED)
    return {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^%s\{reason="([a-z_]+)"\} (\d+)$' % CLOSED, text, re.M)}


def test():
    c = h.Cluster()
    c.sql("CREATE TABLE t (id int PRIMARY KEY)")
    port = h.free_port()
    out = os.path.join(c.tmp, "out.jsonl")
    cfg = h.write_config(os.path.join(c.tmp, "w.yaml"), c.dsn(), "slow", out,
                         extra='metrics:\n  listen: "127.0.0.1:%d"\n' % port)
    d = h.start_walcastd(cfg, c.tmp)
    for path in ("/healthz", "/readyz", "/metrics"):
        status, _ = ask("127.0.0.1", port, path)
        check(status == 200, "%s before the attack: %s" % (path, status))
    before = closed_counts(port)
    check(before == {r: 0 for r in REASONS}, "%s before the attack: %r"
          % (CLOSED, before))

    slots = [Slow(i, port) for i in range(SLOW)]
    stop = threading.Event()
    errors = []

    def attack():
        try:
            t_end = time.monotonic() + ATTACK_S
            while not stop.is_set():
                now = time.monotonic()
                for s in slots:
                    s.step(now, now < t_end)
                if now >= t_end + REQUEST_TIMEOUT_S + SLACK_S:
                    break
                time.sleep(0.05)
        except Exception as e:  # reported by the main thread
            errors.append(e)

    t0 = time.monotonic()
    th = threading.Thread(target=attack, daemon=True)
    th.start()
    answers = []
    # let the slow sockets take their places, then ask all along
    time.sleep(1.5)
    while time.monotonic() - t0 < ATTACK_S:
        for src in ("127.0.0.1", "127.0.0.9"):
            for path in ("/healthz", "/readyz", "/metrics"):
                status, took = ask(src, port, path)
                answers.append((src, path, status, took))
        time.sleep(0.3)
    # the attack stops opening sockets; what is open must be closed by the
    # server within the bound
    th.join(timeout=REQUEST_TIMEOUT_S + SLACK_S + 5)
    stop.set()
    now = time.monotonic()
    still_open = [s for s in slots if s.sock is not None]
    for s in slots:
        s.close(None)
    if errors:
        raise errors[0]

    bad = [a for a in answers if a[2] != 200 or a[3] > ANSWER_WITHIN_S]
    slowest = max(a[3] for a in answers)
    h.log("%d answers under attack, slowest %.3fs" % (len(answers), slowest))
    check(not bad, "%d of %d health/metrics requests failed or took over "
          "%.0fs under slow clients, e.g. %s"
          % (len(bad), len(answers), ANSWER_WITHIN_S, bad[:6]))

    lives = [(s.src, o, cl) for s in slots for (o, cl) in s.lives]
    too_long = [(src, (cl if cl is not None else now) - o)
                for src, o, cl in lives
                if cl is None
                or cl - o > REQUEST_TIMEOUT_S + SLACK_S]
    h.log("%d slow connections, %d closed by the server, longest %.2fs"
          % (len(lives), sum(1 for l in lives if l[2] is not None),
             max((cl - o) for _, o, cl in lives if cl is not None)))
    check(not still_open, "%d slow sockets still open %.0fs after the attack "
          "stopped opening them" % (len(still_open),
                                    REQUEST_TIMEOUT_S + SLACK_S))
    check(not too_long, "%d slow connections lived past %.0fs: %s"
          % (len(too_long), REQUEST_TIMEOUT_S + SLACK_S, too_long[:6]))
    # the address that holds too many loses its oldest at once
    evicted = [1 for src, o, cl in lives
               if src == "127.0.0.1" and cl is not None and cl - o < 2.0]
    check(evicted, "no slow socket of 127.0.0.1 (16 > 8 per address) was "
          "closed early")

    # every connection the server cut off is counted, under its reason
    after = closed_counts(port)
    seen = sum(1 for l in lives if l[2] is not None)
    h.log("%s: %r" % (CLOSED, after))
    check(set(after) == set(REASONS) and all(after[r] > 0 for r in REASONS),
          "%s after the attack, each reason above 0: %r" % (CLOSED, after))
    check(sum(after.values()) == seen, "%s adds up to %d, the clients saw "
          "%d closed by the server: %r" % (CLOSED, sum(after.values()), seen,
                                           after))

    # and walcastd still streams and answers
    c.sql("INSERT INTO t VALUES (1)")
    h.wait_until(lambda: h.count_lines(out) >= 1, timeout=15,
                 what="the insert after the attack")
    status, took = ask("127.0.0.1", port, "/readyz")
    check(status == 200, "/readyz after the attack: %s" % status)
    d.stop()


if __name__ == "__main__":
    h.main(test)
