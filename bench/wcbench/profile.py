# SPDX-License-Identifier: MIT
"""Instructions per change under callgrind: repeatable on a noisy machine.

walcastd (file sink to /dev/null) and, for reference, pg_recvlogical
(to /dev/null) each consume a slot holding the same fixed workload of
small transactions.  Reported: the whole process's instructions divided by
the changes (start-up, connection and shutdown included: a few million
instructions, under 1 % at 50,000 changes), the inclusive instructions of
walcast's stages, and the functions with the most instructions of their
own."""

import os
import re
import subprocess
import time

from .cluster import lsn_str
from .consumers import STATUS_INTERVAL
from .procs import Child, log

# walcast's stage entry points (extern functions in separate translation
# units, so they exist in a Release build without LTO).
STAGES = [
    ("receive (libpq, socket)", "wc_stream_read"),
    ("decode", "wc_decoder_decode"),
    ("filter", "wc_filter_match"),
    ("dispatch + sinks", "wc_bus_dispatch"),
    ("begin", "wc_bus_begin"),
    ("commit", "wc_plugin_host_commit"),
    ("timers, syncs, acks", "wc_plugin_host_dispatch"),
    ("status messages", "wc_stream_send_status"),
]
OLD_NAMES = {"wc_filter_match": "wc_route_match"}

_FN_RE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*?)(?:\s+\[.*\])?$")


def _annotate(outfile, inclusive):
    r = subprocess.run(["callgrind_annotate", "--inclusive=%s"
                        % ("yes" if inclusive else "no"), "--auto=no",
                        "--threshold=100", outfile],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if r.returncode != 0:
        raise RuntimeError("callgrind_annotate failed: " + r.stderr)
    total, fns = None, []
    for line in r.stdout.splitlines():
        if "PROGRAM TOTALS" in line:
            total = int(line.split()[0].replace(",", ""))
            continue
        m = _FN_RE.match(line)
        if m and total is not None:
            fns.append((int(m.group(1).replace(",", "")), m.group(2)))
    return total, fns


def _fn_name(s, with_file=False):
    """"dir/file.c:function [object]" -> "function", or "file.c:function"
    with_file (when the build has debug information; inlined code, like
    jsmn's parser in wc_decoder_decode, then shows under its own file)."""
    s = s.split(" [", 1)[0]
    if ":" not in s:
        return s
    f, fn = s.rsplit(":", 1)
    if with_file and f != "???":
        return "%s:%s" % (os.path.basename(f), fn)
    return fn


def consume(ctx, rundir, who, slot, end, nchanges, tag=None):
    """One consumer under callgrind on `slot` up to `end`: "walcastd" (file
    sink to /dev/null, stopped once the slot is confirmed up to `end`) or
    "pg_recvlogical" (to /dev/null, stops itself at -E).  Returns the
    instructions in all, per change, the top functions and, for walcastd,
    the inclusive instructions of its stages."""
    cl = ctx.cluster
    name = "%s.%s" % (who, tag) if tag else who
    cgout = os.path.join(rundir, "callgrind.%s.out" % name)
    vg = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + cgout]
    if who == "walcastd":
        cfg = os.path.join(rundir, "callgrind.%s.yaml" % name)
        with open(cfg, "w") as f:
            f.write("source:\n  dsn: \"%s\"\n  slot: %s\n"
                    "  create_slot: false\n  status_interval: %s\n"
                    "sinks:\n  - file:\n      path: /dev/null\n"
                    "      fsync: false\n"
                    % (ctx.dsn, slot, STATUS_INTERVAL))
        argv = vg + [ctx.walcastd, "-c", cfg]
    else:
        argv = vg + [os.path.join(ctx.pgbin, "pg_recvlogical"),
                     "-d", ctx.dsn, "-S", slot, "--start", "-E",
                     lsn_str(end), "--no-loop", "-f", "/dev/null"]
        for k, v in ctx.w2j_options:
            argv += ["-o", "%s=%s" % (k, v)]
    errpath = os.path.join(rundir, "callgrind.%s.stderr" % name)
    with open(errpath, "wb") as errf:
        child = Child(argv, "callgrind " + name, stderr=errf)
    t0 = time.monotonic()
    deadline = t0 + 900
    while child.running():
        if who == "walcastd" and cl.slot_state(slot)[1] >= end:
            child.stop(60)
            break
        if time.monotonic() > deadline:
            child.stop(10)
            raise RuntimeError("callgrind %s did not finish" % name)
        child.wait(0.1)
    if child.status != 0:
        raise RuntimeError("callgrind %s exited with %s:\n%s"
                           % (name, child.status,
                              open(errpath, errors="replace").read()[-3000:]))
    total, excl = _annotate(cgout, False)
    entry = {"total_ir": total, "ir_per_change": total / nchanges,
             "changes": nchanges, "seconds": time.monotonic() - t0,
             "top": [(ir, _fn_name(f, True)) for ir, f in excl[:20]]}
    if who == "walcastd":
        _, incl = _annotate(cgout, True)
        byname = {}
        for ir, f in incl:
            byname.setdefault(_fn_name(f), ir)
        # wc_route_match: the stream filter's name before it moved into
        # lib/core, so that a build from before still shows the stage
        entry["stages"] = [(label, fn,
                            byname.get(fn, byname.get(OLD_NAMES.get(fn))))
                           for label, fn in STAGES]
    log("callgrind %s: %.0f instructions per change"
        % (name, entry["ir_per_change"]))
    return entry


def run(ctx, rundir, changes, per=5, with_recv=True):
    """The fixed workload: `changes` changes in small transactions of
    `per`, consumed by walcastd and (with_recv) pg_recvlogical."""
    cl = ctx.cluster
    slots = {"walcastd": "cg_walcast"}
    if with_recv:
        slots["pg_recvlogical"] = "cg_recv"
    for s in slots.values():
        cl.create_slot(s)
    ntx = max(1, changes // per)
    cl.sql("CALL walcast_bench.small(%d, %d)" % (ntx, per))
    end = cl.end_position()
    nchanges = ntx * per
    res = {"changes": nchanges, "workload": "%d transactions of %d changes"
           % (ntx, per)}
    for who, slot in slots.items():
        res[who] = consume(ctx, rundir, who, slot, end, nchanges)
        cl.drop_slot(slot)
    return res
