# SPDX-License-Identifier: MIT
"""Slot safety: the state file in state_dir, and exit 69 where changes may
have been lost.

- first start: the state file records the system identifier, timeline,
  database, slot and a confirmed LSN that is never behind the slot's;
- the slot vanished (dropped while walcastd was stopped): walcastd exits 69
  without creating a new slot, saying so and how to accept it; `walcast
  slot create` refuses without --force; with --force it creates the slot
  and walcastd goes on;
- the slot was recreated (dropped and created again, at a later
  position): exit 69; with source.on_slot_lost: recreate it goes on with a
  warning;
- another server (another system identifier) with the same state
  directory: exit 69;
- a damaged state file: exit 69 naming the file; an unwritable state
  directory: exit 78;
- a state file from the future (a confirmed position beyond the server's
  WAL), of another slot (exit 69) or of another database (exit 78), or a
  symbolic link (exit 69) is refused and left as it is; a symbolic link
  where the temporary goes is never written through;
- without a state file, a slot dropped while walcastd reconnects is exit
  69 too, never a new slot;
- `walcast slot drop` removes the state file, so a new start is a first
  start.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SCHEMA = "town6-safe"
SLOT = "safe_slot"
ACCEPT = "walcast slot create --force"


def read_state(path):
    st = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                st[k] = v
    return st


class Ctx:
    def __init__(self, c):
        self.c = c
        self.state_dir = os.path.join(c.tmp, "state")
        os.mkdir(self.state_dir)
        self.state = os.path.join(self.state_dir, SLOT + ".state")
        self.n = 0

    def cfg(self, extra="", state_dir=None, dsn=None):
        self.n += 1
        path = os.path.join(self.c.tmp, "s%02d.yaml" % self.n)
        out = os.path.join(self.c.tmp, "s%02d.jsonl" % self.n)
        extra = "state_dir: %s\n" % h.yq(state_dir or self.state_dir) + extra
        return h.write_config(path, dsn or self.c.dsn(), SLOT, out,
                              extra=extra), out

    def insert(self, first, n=3):
        self.c.sql('INSERT INTO "%s".t SELECT g FROM generate_series(%d, %d) '
                   'g' % (SCHEMA, first, first + n - 1))

    def run_until_delivered(self, cfg, out, ids, name):
        d = h.start_walcastd(cfg, self.c.tmp, name=name)
        try:
            def got():
                return {int(e["columns"][0]["value"]) for e in
                        h.read_jsonl(out, complete_only=True)
                        if e.get("table") == "t" and e.get("op") == "insert"}
            h.wait_until(lambda: set(ids) <= got(), timeout=30,
                         what=lambda: "ids %r in %s (got %r)"
                         % (ids, out, sorted(got())))
            d.stop()
        finally:
            d.kill()
        return d


def expect_refusal(ctx, cfg, name, words, rc=h.EX_UNAVAILABLE):
    r = h.run([h.binary("walcastd"), "-c", cfg], timeout=60)
    missing = [w for w in words if w not in r.stderr]
    check(r.returncode == rc and not missing,
          "%s: exit %d (expected %d), missing %r in stderr:\n%s"
          % (name, r.returncode, rc, missing, r.stderr))
    h.log("%s: exit %d: %s" % (name, r.returncode,
                               r.stderr.strip().splitlines()[-1][:300]))
    return r


def case_first_start(ctx):
    c = ctx.c
    cfg, out = ctx.cfg()
    ctx.insert(1)  # before the slot: not delivered
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-first")
    try:
        check(os.path.exists(ctx.state), "no state file %s after the start"
              % ctx.state)
        st = read_state(ctx.state)
        sysid = c.sql_value("SELECT system_identifier::text FROM "
                            "pg_control_system()")
        tli = c.sql_value("SELECT timeline_id::text FROM "
                          "pg_control_checkpoint()")
        check(st.get("system_id") == sysid and st.get("slot") == SLOT and
              st.get("database") == "postgres" and st.get("timeline") == tli,
              "state file %r (system %s, timeline %s)" % (st, sysid, tli))
        ctx.insert(10)
        c.wait_flushed()
        target = h.lsn_int(c.current_lsn())
        h.wait_until(lambda: h.lsn_int(c.slot(SLOT)["confirmed_flush_lsn"])
                     >= target, timeout=30, what="the slot confirmed")
        # the file is written before a position is sent: never behind
        for _ in range(10):
            slot = h.lsn_int(c.slot(SLOT)["confirmed_flush_lsn"])
            rec = h.lsn_int(read_state(ctx.state)["confirmed_lsn"])
            check(rec >= slot, "state file at %s, behind the slot's %s"
                  % (h.lsn_str(rec), h.lsn_str(slot)))
            time.sleep(0.1)
        d.stop()
    finally:
        d.kill()
    ids = [int(e["columns"][0]["value"]) for e in h.read_jsonl(out)
           if e.get("table") == "t"]
    check(ids == [10, 11, 12], "delivered %r" % ids)


def case_vanished(ctx):
    c = ctx.c
    cfg, out = ctx.cfg()
    c.sql("SELECT pg_drop_replication_slot('%s')" % SLOT)
    ctx.insert(20)  # lost with the slot
    expect_refusal(ctx, cfg, "walcastd-vanished",
                   ["has vanished", "will not be delivered", ACCEPT,
                    "on_slot_lost"])
    check(c.slot(SLOT) is None, "walcastd created a new slot in place of "
          "the vanished one")
    r = h.walcast("slot", "create", "-c", cfg)
    check(r.returncode == h.EX_UNAVAILABLE and "--force" in r.stderr,
          "walcast slot create without --force: exit %d, %s"
          % (r.returncode, r.stderr))
    check(c.slot(SLOT) is None, "slot create without --force made a slot")
    r = h.walcast("slot", "create", "--force", "-c", cfg)
    check(r.returncode == 0 and "created" in r.stdout,
          "walcast slot create --force: exit %d\n%s%s"
          % (r.returncode, r.stdout, r.stderr))
    check(h.lsn_int(read_state(ctx.state)["confirmed_lsn"]) ==
          h.lsn_int(c.slot(SLOT)["confirmed_flush_lsn"]),
          "the state file does not record the new slot")
    ctx.insert(30)
    ctx.run_until_delivered(cfg, out, [30, 31, 32], "walcastd-accepted")


def case_recreated(ctx):
    c = ctx.c
    cfg, out = ctx.cfg()
    c.sql("SELECT pg_drop_replication_slot('%s')" % SLOT)
    ctx.insert(40)
    h.create_slot_sql(c, SLOT)
    expect_refusal(ctx, cfg, "walcastd-recreated",
                   ["past the", "recreated", "may have been lost", ACCEPT])
    # the config switch accepts it
    cfg2, out2 = ctx.cfg(extra="")
    with open(cfg2) as f:
        text = f.read()
    with open(cfg2, "w") as f:
        f.write(text.replace("  create_slot: true\n",
                             "  create_slot: true\n"
                             "  on_slot_lost: recreate\n"))
    ctx.insert(50)
    d = ctx.run_until_delivered(cfg2, out2, [50, 51, 52],
                                "walcastd-on-slot-lost")
    check("going on from the slot as it is now" in d.stderr(),
          "no warning about accepting the slot:\n" + d.stderr())


def case_other_server(ctx):
    c2 = h.Cluster()
    try:
        c2.sql('CREATE SCHEMA "%s"; CREATE TABLE "%s".t (id int PRIMARY KEY)'
               % (SCHEMA, SCHEMA))
        cfg, _ = ctx.cfg(dsn=c2.dsn())
        expect_refusal(ctx, cfg, "walcastd-other-server",
                       ["another one", "system identifier", ACCEPT])
        check(c2.slot(SLOT) is None, "a slot was created on the other server")
    finally:
        c2.stop()


def case_bad_state(ctx):
    c = ctx.c
    with open(ctx.state) as f:
        good = f.read()
    with open(ctx.state, "w") as f:
        f.write(good.replace("confirmed_lsn=", "confirmed_lsn=zz"))
    cfg, _ = ctx.cfg()
    expect_refusal(ctx, cfg, "walcastd-damaged",
                   [ctx.state, "damaged", ACCEPT])
    with open(ctx.state, "w") as f:
        f.write(good)
    # a state directory that does not exist
    cfg, _ = ctx.cfg(state_dir=os.path.join(c.tmp, "no", "such", "dir"))
    expect_refusal(ctx, cfg, "walcastd-no-state-dir",
                   ["cannot write the state file", "state_dir"],
                   rc=h.EX_CONFIG)


def case_foreign_state(ctx):
    """A state file that is not this slot's record: from the future, of
    another slot, of another database, a symbolic link; and a symbolic
    link where the temporary goes."""
    c = ctx.c
    with open(ctx.state) as f:
        good = f.read()
    st = read_state(ctx.state)
    cfg, out = ctx.cfg()

    def refused(text, name, words, rc):
        with open(ctx.state, "w") as f:
            f.write(text)
        expect_refusal(ctx, cfg, name, words, rc=rc)
        with open(ctx.state) as f:
            check(f.read() == text, "%s: the state file was rewritten" % name)

    future = h.lsn_str(h.lsn_int(c.current_lsn()) + (1 << 30))
    refused(good.replace("confirmed_lsn=" + st["confirmed_lsn"],
                         "confirmed_lsn=" + future),
            "walcastd-future-state",
            [ctx.state, future, "beyond the server's current WAL position",
             ACCEPT], h.EX_UNAVAILABLE)
    refused(good.replace("slot=" + SLOT, "slot=other_slot"),
            "walcastd-other-slot-state",
            [ctx.state, 'records slot "other_slot"', ACCEPT],
            h.EX_UNAVAILABLE)
    refused(good.replace("database=postgres", "database=otherdb"),
            "walcastd-other-database-state",
            [ctx.state, '"otherdb"', "source.dsn", ACCEPT], h.EX_CONFIG)

    # a symbolic link at the state file is refused, its target untouched
    victim = os.path.join(c.tmp, "victim.state")
    with open(victim, "w") as f:
        f.write(good)
    os.unlink(ctx.state)
    os.symlink(victim, ctx.state)
    expect_refusal(ctx, cfg, "walcastd-symlinked-state",
                   [ctx.state, "symbolic link", ACCEPT])
    os.unlink(ctx.state)
    with open(ctx.state, "w") as f:
        f.write(good)

    # a symbolic link where the temporary goes is never written through
    precious = os.path.join(c.tmp, "precious")
    with open(precious, "w") as f:
        f.write("precious\n")
    os.symlink(precious, ctx.state + ".tmp")
    ctx.insert(60)
    ctx.run_until_delivered(cfg, out, [60, 61, 62], "walcastd-tmp-link")
    with open(precious) as f:
        check(f.read() == "precious\n", "the file a symbolic link at %s.tmp "
              "points to was overwritten" % ctx.state)
    check(not os.path.islink(ctx.state) and
          read_state(ctx.state).get("slot") == SLOT,
          "the state file is not a regular file of slot %s after the run"
          % SLOT)


def case_vanished_while_running(ctx):
    """Without a state file: a slot dropped during a reconnect is still
    never replaced by a new one."""
    c = ctx.c
    cfg = h.write_config(os.path.join(c.tmp, "nostate.yaml"), c.dsn(),
                         "nostate_slot", os.path.join(c.tmp, "nostate.jsonl"))
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-nostate")
    try:
        check("no state_dir" in d.stderr(), "no notice that slot checks are "
              "off without a state directory:\n" + d.stderr())
        pid = c.slot("nostate_slot")["active_pid"]
        c.sql("SELECT pg_terminate_backend(%s)" % pid)

        def dropped():
            return c.sql("SELECT pg_drop_replication_slot('nostate_slot')",
                         check=False) is not None
        h.wait_until(dropped, timeout=10, interval=0.05,
                     what="dropping the slot while walcastd reconnects")
        rc = d.wait(timeout=30)
        check(rc == h.EX_UNAVAILABLE and "has vanished while walcastd was "
              "running" in d.stderr(),
              "walcastd exited %s after its slot vanished:\n%s"
              % (rc, d.stderr()))
        check(c.slot("nostate_slot") is None, "a new slot was created")
    finally:
        d.kill()


def case_drop(ctx):
    c = ctx.c
    cfg, out = ctx.cfg()
    # a snapshot's progress and an owed initial snapshot belong to the
    # slot as much as its state file does (docs/snapshots.md)
    beside = [ctx.state[:-len(".state")] + s
              for s in (".snapshot", ".snapshot-owed")]
    check(ctx.state.endswith(".state"), "state file " + ctx.state)
    for p in beside:
        with open(p, "w") as f:
            f.write("# walcast snapshot progress, of the slot dropped\n")
    r = h.walcast("slot", "drop", "-c", cfg)
    check(r.returncode == 0, "walcast slot drop: exit %d, %s"
          % (r.returncode, r.stderr))
    check(not os.path.exists(ctx.state), "slot drop left the state file")
    for p in beside:
        check(not os.path.exists(p), "slot drop left " + p)
    # a first start again: the slot is created, no refusal
    d = h.start_walcastd(cfg, c.tmp, name="walcastd-after-drop")
    d.stop()
    check(os.path.exists(ctx.state), "no state file after the new start")


def test():
    c = h.Cluster()
    c.sql('CREATE SCHEMA "%s"; CREATE TABLE "%s".t (id int PRIMARY KEY)'
          % (SCHEMA, SCHEMA))
    ctx = Ctx(c)
    cases = h.Cases()
    named = [("first start records the slot", case_first_start),
             ("slot vanished", case_vanished),
             ("slot recreated", case_recreated),
             ("another server", case_other_server),
             ("damaged state, no state dir", case_bad_state),
             ("a state file that is not this slot's", case_foreign_state),
             ("vanished during a reconnect", case_vanished_while_running),
             ("slot drop removes the state", case_drop)]
    # the cases after the first read on from the slot and the state file
    # that it leaves: it runs before any of them run alone
    for name, fn in named:
        cases.run(name, fn, ctx, before=[n for n, _ in named]
                  if fn is case_first_start else ())
    return cases.finish()


if __name__ == "__main__":
    h.main(test)
