# SPDX-License-Identifier: MIT
"""The ground floor of wctest: logging, failures, the cleanup registry
(everything started is torn down at exit, last in first out), temporary
directories, ports, polling, LSNs.  No side effects at import: the test
runner (wctest.harness) installs the exit and signal handlers."""

import os
import shutil
import socket
import tempfile
import time
import traceback

PGBIN = os.environ.get("WC_PGBIN", "/usr/lib/postgresql/15/bin")

IS_ROOT = os.geteuid() == 0

_cleanups = []          # callables, run LIFO at exit
_procs = []             # every Proc started, killed at exit if still running


def log(*args):
    print("[it]", *args, flush=True)


class TestFailure(AssertionError):
    pass


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


# --------------------------------------------------------------------------
# cleanup

def _run_cleanups():
    while _procs:
        p = _procs.pop()
        p.kill()
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception:  # keep cleaning up
            traceback.print_exc()


def make_tmpdir():
    d = tempfile.mkdtemp(prefix="walcast-it-")
    os.chmod(d, 0o755)
    if IS_ROOT:
        shutil.chown(d, "postgres", "postgres")
        # every ancestor must be traversable by postgres
        p = os.path.dirname(d)
        while p and p != "/":
            st = os.stat(p)
            if not st.st_mode & 0o001:
                os.chmod(p, st.st_mode | 0o011)
            p = os.path.dirname(p)

    def rm():
        if os.environ.get("WC_KEEP_TMP"):
            log("keeping", d)
        else:
            shutil.rmtree(d, ignore_errors=True)
    _cleanups.append(rm)
    return d


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_until(pred, timeout=30.0, interval=0.1, what="condition"):
    """Polls pred() until it returns a truthy value, which is returned.
    Raises TestFailure after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            fail("timed out after %.0fs waiting for %s"
                 % (timeout, what() if callable(what) else what))
        time.sleep(interval)


# --------------------------------------------------------------------------
# LSNs

def lsn_int(s):
    hi, lo = s.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def lsn_str(v):
    return "%X/%X" % (v >> 32, v & 0xFFFFFFFF)


def at_cleanup(fn):
    """Registers fn to run at exit (last in, first out)."""
    _cleanups.append(fn)
