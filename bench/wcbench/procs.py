# SPDX-License-Identifier: MIT
"""Child processes of the benchmark: started in their own session (so a
Ctrl-C in the terminal reaches only bench/run, which then stops them in
order), registered, and killed by pid at exit.  Reaped with wait4() so
their resource usage (CPU, peak RSS) is measured exactly."""

import os
import platform
import signal
import subprocess
import threading
import time

from wctest.base import _cleanups  # noqa: E402

_live = []          # Child objects not yet reaped
# _cleanups: callables, run last-in first-out; the list the tests' harness
# registers in (its Cluster's stop among them), so that one order holds


def log(*args):
    print("[bench]", *args, flush=True)


def at_cleanup(fn):
    _cleanups.append(fn)


def cleanup():
    """Kills every child still running (by pid), then runs the registered
    cleanups (cluster stop, temporary directory removal)."""
    while _live:
        _live[-1].kill()
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # keep cleaning up
            log("cleanup step failed: %s" % e)


class Child:
    """A process started with Popen whose exit is collected by a thread
    blocked in os.wait4(): end time and rusage are exact."""

    def __init__(self, argv, name, stdout=None, stderr=None, env=None,
                 stdin=None):
        self.name = name
        self.argv = argv
        self.t_start = time.monotonic()
        self.p = subprocess.Popen(argv, stdin=stdin or subprocess.DEVNULL,
                                  stdout=stdout or subprocess.DEVNULL,
                                  stderr=stderr or subprocess.DEVNULL,
                                  env=env, start_new_session=True)
        self.pid = self.p.pid
        self.t_end = None
        self.rusage = None
        self.status = None
        self._done = threading.Event()
        _live.append(self)
        threading.Thread(target=self._reap, daemon=True).start()

    def _reap(self):
        while True:
            try:
                _, status, ru = os.wait4(self.pid, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                status, ru = 0, None
                break
        self.t_end = time.monotonic()
        self.rusage = ru
        self.status = os.waitstatus_to_exitcode(status)
        self.p.returncode = self.status  # Popen must not wait again
        if self in _live:
            _live.remove(self)
        self._done.set()

    def running(self):
        return not self._done.is_set()

    def wait(self, timeout=None):
        """True when it exited within timeout."""
        return self._done.wait(timeout)

    def signal(self, sig):
        if self.running():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout=30.0):
        """SIGTERM, then SIGKILL after timeout; returns the exit code."""
        self.signal(signal.SIGTERM)
        if not self.wait(timeout):
            log("%s (pid %d) ignored SIGTERM for %.0fs: killing it"
                % (self.name, self.pid, timeout))
            self.kill()
        return self.status

    def kill(self):
        self.signal(signal.SIGKILL)
        if not self.wait(10.0):
            log("%s (pid %d) did not exit after SIGKILL" % (self.name,
                                                            self.pid))
            if self in _live:
                _live.remove(self)

    def cpu_seconds(self):
        return self.rusage.ru_utime + self.rusage.ru_stime

    def maxrss_kb(self):
        return self.rusage.ru_maxrss


def proc_cpu_seconds(pid):
    """utime+stime of a running process from /proc, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    # fields[0] is state (field 3); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def machine():
    """The machine a benchmark ran on, for its report."""
    model, n = "unknown", 0
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("processor"):
                n += 1
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) / 1024.0 / 1024.0
    return {"cpu": model, "cores": n, "online": os.cpu_count(),
            "mem_gb": mem, "kernel": platform.release(),
            "load_start": "%.2f %.2f %.2f" % os.getloadavg()}
