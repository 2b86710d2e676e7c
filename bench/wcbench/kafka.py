# SPDX-License-Identifier: MIT
"""Kafka for the benchmark: tests/tools/kafka_mock (librdkafka's mock
cluster as a process, built with the tests) and kcat readers."""

import os
import re
import select
import shutil
import subprocess
import threading
import time

from .procs import Child

PREFIX = "bench"


def find_mock(build):
    p = os.environ.get("WC_KAFKA_MOCK") or os.path.join(
        build, "tests", "tools", "kafka_mock")
    return p if os.access(p, os.X_OK) else None


def sink_yaml(bootstrap):
    return ["  - kafka:",
            "      topic: \"{prefix}.{schema}.{table}\"",
            "      prefix: %s" % PREFIX,
            "      properties:",
            "        bootstrap.servers: \"%s\"" % bootstrap]


class Mock:
    """One mock cluster (one broker).  It keeps every message in memory, so
    the benchmark starts a fresh one for each run and stops it after."""

    def __init__(self, path, errpath):
        self._err = open(errpath, "wb")
        self.child = Child([path, "1"], "kafka_mock", stdout=subprocess.PIPE,
                           stderr=self._err, stdin=subprocess.PIPE)
        self.errpath = errpath
        self.bootstrap = self._line(15)
        if "127.0.0.1:" not in self.bootstrap:
            raise RuntimeError("kafka_mock printed %r" % self.bootstrap)

    def _line(self, timeout):
        out = self.child.p.stdout
        deadline = time.monotonic() + timeout
        buf = b""
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([out], [], [], left)[0]:
                raise RuntimeError("kafka_mock did not answer:\n"
                                   + open(self.errpath, errors="replace")
                                   .read()[-2000:])
            b = os.read(out.fileno(), 1)
            if not b:
                raise RuntimeError("kafka_mock exited")
            buf += b
        return buf.decode().strip()

    def cmd(self, line):
        self.child.p.stdin.write((line + "\n").encode())
        self.child.p.stdin.flush()
        r = self._line(15)
        if r != "ok":
            raise RuntimeError("kafka_mock %r: %s" % (line, r))

    def cpu_seconds(self):
        return self.child.cpu_seconds() if self.child.rusage else None

    def stop(self):
        if self.child.running():
            try:
                self.child.p.stdin.close()     # EOF: a clean stop
            except OSError:
                pass
            if not self.child.wait(15):
                self.child.stop(5)
        for f in (self.child.p.stdout, self._err):
            try:
                f.close()
            except OSError:
                pass


_TS_MS = re.compile(rb'"ts_ms":(\d+)\},"op"')


class Reader(threading.Thread):
    """kcat reading one topic from the start, unbuffered; records for each
    message value its arrival time here and its source.ts_ms (the commit
    time, in milliseconds)."""

    def __init__(self, bootstrap, topic, errpath):
        super().__init__(daemon=True)
        self._err = open(errpath, "wb")
        self.child = Child(
            [shutil.which("kcat"), "-b", bootstrap, "-C", "-t", topic,
             "-p", "0", "-o", "beginning", "-u", "-q", "-f", "%s\\n",
             "-X", "fetch.wait.max.ms=1", "-X", "fetch.error.backoff.ms=5"],
            "kcat " + topic, stdout=subprocess.PIPE, stderr=self._err)
        self.points = []        # (arrival epoch s, commit epoch s)

    def run(self):
        for line in self.child.p.stdout:
            t = time.time()
            m = _TS_MS.search(line)
            if m:
                self.points.append((t, int(m.group(1)) / 1000.0))

    def stop(self):
        self.child.stop(5)
        self.join(5)
        self._err.close()
